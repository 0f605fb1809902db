"""Bench: how often the embedded model's outputs are grounded, per task and example mode.

Over generated inputs that share no names with any prompt's examples (and some
that ask the model to repeat its instructions), each entries task runs through
its real handler path once per few-shot mode (`shaped`: an example built from
the request's shape; `static`: the spec's own; `none`), and chat (no examples)
once: the share of outputs grounded on the first try, after the repair round,
and fallen back, next to the unchecked first outputs scored by the same check
(`raw_leak`: they would have carried a prompt's text; `raw_ungrounded`: any
failure), the tokens the repair rounds cost, and for entries tasks how many of
the input's error and warning entries a grounded output names (`problem_recall`).
A mode that passes by naming nothing is not better: `useful_first_try` counts
only first tries whose reply is the model's and names a problem when there is
one, and `best_mode` is the mode with the highest mean of it.

    loglytics bench grounding [--url http://127.0.0.1:PORT] [--inputs 12] [--budget-s 660]
        [--modes shaped,static,none] [--tasks detect-errors,analyze,chat] [--parallel 2]

`--inputs` (alias `--size`) is per task and mode: the default 12 is 36 inputs per
entries task and 12 chat questions. The run goes round by round (one input for
every cell), and starts no round that would end past `--budget-s`, so a run on
a loaded machine ends in time with fewer rounds (`rounds`, `stopped_by_budget`)
rather than with some cells unmeasured. Calls that get no answer within 60 s
are `no_answer` (the reply would be an error). The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast, get_args

from prometheus_client import CollectorRegistry

from loglytics.bench import json_line
from loglytics.bench.grounding_inputs import ChatCase, chat_inputs, entry_inputs
from loglytics.embedded.processes import stop_pid
from loglytics.embedded.stack import start_llamacpp
from loglytics.prompts.chat import CHAT
from loglytics.prompts.grounding import (
    OUTCOMES,
    Failure,
    GroundingMetrics,
    is_leak,
    prompt_texts,
)
from loglytics.providers import LLMPool, OpenAIProvider, PoolError, RetryPolicy
from loglytics.schemas import LLMRequest
from loglytics.settings import load_settings
from loglytics.tasks.analyze import ANALYZE_TASK
from loglytics.tasks.base import ExampleMode, Storage, TaskContext
from loglytics.tasks.chat import ChatInput, speak
from loglytics.tasks.detect_anomalies import DETECT_ANOMALIES_TASK
from loglytics.tasks.detect_errors import DETECT_ERRORS_TASK
from loglytics.tasks.entries import EntriesTask, answer, examples_for, problem_indices
from loglytics.tasks.root_cause import ROOT_CAUSE_TASK

MODEL = "smollm2-135m-instruct"
ENTRIES_TASKS: dict[str, EntriesTask[Any, Any]] = {
    "analyze": ANALYZE_TASK,
    "detect-errors": DETECT_ERRORS_TASK,
    "detect-anomalies": DETECT_ANOMALIES_TASK,
    "root-cause": ROOT_CAUSE_TASK,
}
TASKS = (*ENTRIES_TASKS, CHAT.task)

Row = dict[str, Any]
Cell = tuple[ExampleMode | None, str]
"""(example mode, task); chat shows no examples, so its mode is None."""


def context_for(pool: LLMPool, name: str, mode: ExampleMode, given: dict[str, Any]) -> TaskContext:
    request = LLMRequest(
        request_id=f"bench-{name}", tenant="bench", api_key="k", task=name, input=given
    )
    return TaskContext(
        request=request,
        tier="free",
        pool=pool,
        storage=cast(Storage, None),
        grounding=GroundingMetrics(CollectorRegistry()),
        examples=mode,
    )


def scored(outcome: str, failures: Sequence[Failure], shown: Sequence[str], tokens: int) -> Row:
    return {
        "outcome": outcome,
        "raw_ungrounded": bool(failures),
        "raw_leak": any(is_leak(f, shown) for f in failures),
        "repair_tokens": tokens,
    }


async def score_entries(pool: LLMPool, mode: ExampleMode, name: str, lines: list[str]) -> Row:
    """One entries handler run: its outcome, the unchecked first output's failures, recall."""
    task = ENTRIES_TASKS[name]
    ctx = context_for(pool, name, mode, {})
    done = await answer(ctx, task, lines)
    asked = done.asked
    if asked is None:
        return {"outcome": "no_call"}
    entries = done.packed.entries
    shown = prompt_texts(
        task.spec.system, (*task.spec.examples, *examples_for(mode, task, entries))
    )
    row = scored(asked.outcome, asked.first_failures, shown, asked.repair_tokens)
    problems = set(problem_indices(entries))
    named = set(task.refs(asked.value)) if asked.value is not None else set()
    if asked.value is not None and problems:
        row["problem_recall"] = len(problems & named) / len(problems)
    # Used: the reply is the model's (not the rules'), and names a problem when there is one.
    from_model = asked.value is not None and bool(getattr(done.data, "grounded", True))
    row["useful"] = from_model and (not problems or bool(problems & named))
    return row


async def score_chat(pool: LLMPool, case: ChatCase) -> Row:
    """One chat answer: its outcome and the unchecked first answer's failures."""
    given = ChatInput(message=case.message, context=case.context or None)
    ctx = context_for(pool, CHAT.task, "none", given.model_dump())
    spoken = await speak(ctx, given)
    shown = prompt_texts(CHAT.system, CHAT.examples)
    row = scored(spoken.outcome, spoken.first_failures, shown, spoken.repair_tokens)
    row["useful"] = spoken.grounded
    return row


@dataclass(frozen=True)
class Plan:
    """What one bench run measures, and the time it may take: a round (one input for
    every cell) starts only while the budget has room for a round as long as the longest
    so far, so the cells keep the same inputs; `call_timeout_s` bounds one round trip."""

    inputs: int
    modes: tuple[ExampleMode, ...]
    tasks: tuple[str, ...]
    parallel: int = 2
    budget_s: float = 660.0
    call_timeout_s: float = 60.0

    def cells(self) -> list[Cell]:
        """Every (mode, task) measured: entries tasks once per mode, chat (no examples) once."""
        out: list[Cell] = [(m, t) for m in self.modes for t in self.tasks if t in ENTRIES_TASKS]
        return [*out, (None, CHAT.task)] if CHAT.task in self.tasks else out


async def timed(call: Callable[[], Awaitable[Row]], gate: asyncio.Semaphore) -> Row:
    """One row and its seconds; a call the pool could not answer in time is `no_answer`."""
    async with gate:
        began = time.monotonic()
        try:
            row = await call()
        except PoolError as exc:  # counted (the reply would be an error), not scored
            row = {"outcome": "no_answer", "error": exc.error}
        row["s"] = time.monotonic() - began
        return row


def rates(rows: list[Row]) -> dict[str, Any]:
    """Shares over the runs that asked the model (they sum to 1 with `no_answer`)."""
    asked = [r for r in rows if r["outcome"] != "no_call"]
    n = max(1, len(asked))

    def share(key: str, value: Any = True) -> float:
        return round(sum(1 for r in asked if r.get(key) == value) / n, 3)

    recalls = [float(r["problem_recall"]) for r in asked if "problem_recall" in r]
    return {
        "runs": len(asked),
        "no_call": sum(1 for r in rows if r["outcome"] == "no_call"),
        "first_try": share("outcome", "first_try"),
        "useful_first_try": round(
            sum(1 for r in asked if r["outcome"] == "first_try" and r.get("useful")) / n, 3
        ),
        "repaired": share("outcome", "repaired"),
        "fell_back": share("outcome", "fell_back"),
        "no_answer": share("outcome", "no_answer"),
        "raw_ungrounded": share("raw_ungrounded"),
        "raw_leak": share("raw_leak"),
        "repair_tokens": sum(int(r.get("repair_tokens", 0)) for r in asked),
        "problem_recall": round(sum(recalls) / len(recalls), 3) if recalls else None,
        "mean_s": round(sum(float(r["s"]) for r in asked) / n, 1),
    }


def answered_first_try(rows: list[Row]) -> float | None:
    """First-try share among runs that got an answer: the mode's merit without the calls a
    loaded machine timed out (which `first_try` counts against it)."""
    answered = [r for r in rows if r["outcome"] in OUTCOMES]
    hits = sum(1 for r in answered if r["outcome"] == "first_try")
    return round(hits / len(answered), 3) if answered else None


def round_calls(pool: LLMPool, plan: Plan, i: int) -> dict[Cell, Callable[[], Awaitable[Row]]]:
    """Input `i` for every cell: each mode reads the same input in the same round."""
    lines, case = entry_inputs(plan.inputs)[i], chat_inputs(plan.inputs)[i]
    calls: dict[Cell, Callable[[], Awaitable[Row]]] = {}
    for mode, task in plan.cells():
        if mode is None:
            calls[(mode, task)] = functools.partial(score_chat, pool, case)
        else:
            calls[(mode, task)] = functools.partial(score_entries, pool, mode, task, lines)
    return calls


async def bench(url: str, plan: Plan) -> dict[str, Any]:
    """Round by round over the inputs, so a run cut by its budget stays side by side."""
    limit = plan.call_timeout_s
    provider = OpenAIProvider(
        name="embedded", base_url=url, model=MODEL, max_parallel=plan.parallel, timeout=limit
    )
    pool = LLMPool(
        {"free": [provider]},
        cache_size=0,
        timeout=limit,
        retry=RetryPolicy(attempts=1),
        breaker_threshold=1_000_000,  # a slow call must not turn the next cells into errors
    )
    gate = asyncio.Semaphore(plan.parallel)
    rows: dict[Cell, list[Row]] = {cell: [] for cell in plan.cells()}
    began, longest, rounds = time.monotonic(), 0.0, 0
    await pool.start()
    try:
        while rounds < plan.inputs and time.monotonic() - began + longest <= plan.budget_s:
            started = time.monotonic()
            calls = round_calls(pool, plan, rounds)
            done = await asyncio.gather(*(timed(c, gate) for c in calls.values()))
            for cell, row in zip(calls, done, strict=True):
                rows[cell].append(row)
            rounds += 1
            longest = max(longest, time.monotonic() - started)
            print(f"round {rounds}/{plan.inputs} at {time.monotonic() - began:.0f}s", flush=True)
    finally:
        await pool.stop()
    return report(plan, rows, rounds, time.monotonic() - began)


def report(plan: Plan, rows: dict[Cell, list[Row]], rounds: int, seconds: float) -> dict[str, Any]:
    """Per mode and task the rates, chat's, and the mode with the best mean first-try share."""
    result: dict[str, Any] = {"bench": "grounding", "model": MODEL, "inputs": plan.inputs}
    result["rounds"] = rounds
    result["stopped_by_budget"] = rounds < plan.inputs
    for (mode, task), cell in rows.items():
        if mode is None:
            result[task] = rates(cell)
        else:
            result.setdefault(mode, {})[task] = rates(cell)

    def mean(mode: str, key: str) -> float:
        return round(sum(float(t[key]) for t in result[mode].values()) / len(result[mode]), 3)

    modes = [m for m in plan.modes if result.get(m)]
    means = {m: mean(m, "first_try") for m in modes}
    useful = {m: mean(m, "useful_first_try") for m in modes}
    result["first_try_by_mode"] = means
    result["useful_first_try_by_mode"] = useful
    result["first_try_answered_by_mode"] = {
        m: answered_first_try([r for (mode, _), cell in rows.items() if mode == m for r in cell])
        for m in means
    }
    result["best_mode"] = max(useful, key=lambda m: useful[m]) if useful else None
    result["seconds"] = round(seconds, 1)
    return result


def table(result: dict[str, Any]) -> list[str]:
    """The README's table rows: mode, task, then the rates."""
    keys = (
        "first_try",
        "useful_first_try",
        "repaired",
        "fell_back",
        "no_answer",
        "raw_ungrounded",
        "raw_leak",
    )
    out = []
    for mode, per_task in result.items():
        if mode not in get_args(ExampleMode):
            continue
        for task, r in per_task.items():
            cells = " | ".join(str(r[k]) for k in keys)
            out.append(f"| {mode} | {task} | {r['runs']} | {cells} | {r['repair_tokens']} |")
    if CHAT.task in result:
        r = result[CHAT.task]
        cells = " | ".join(str(r[k]) for k in keys)
        out.append(f"| - | chat | {r['runs']} | {cells} | {r['repair_tokens']} |")
    return out


def run(args: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="loglytics bench grounding")
    parser.add_argument("--url", default="", help="an already running llama.cpp server")
    parser.add_argument(
        "--inputs", "--size", type=int, default=12, help="generated inputs per task and mode"
    )
    parser.add_argument("--modes", default="shaped,static,none")
    parser.add_argument("--tasks", default=",".join(TASKS), help="a subset of the tasks")
    parser.add_argument("--parallel", type=int, default=2, help="calls in flight at once")
    parser.add_argument("--budget-s", type=float, default=660.0, help="seconds of rounds at most")
    opts = parser.parse_args(args)
    modes = tuple(cast(list[ExampleMode], [m for m in opts.modes.split(",") if m]))
    names = tuple(n for n in opts.tasks.split(",") if n)
    unknown = [n for n in names if n not in TASKS] + [
        m for m in modes if m not in get_args(ExampleMode)
    ]
    if unknown:
        parser.error(f"unknown task or mode: {', '.join(unknown)}")
    plan = Plan(opts.inputs, modes, names, max(1, opts.parallel), opts.budget_s)
    url = opts.url
    with tempfile.TemporaryDirectory(prefix="loglytics-bench-") as state:
        pid = None
        if not url:
            url, pid = start_llamacpp(load_settings(state_dir=state), tied=True)
        try:
            result = asyncio.run(bench(url, plan))
        finally:
            if pid is not None:
                stop_pid(pid)
    print(
        "| mode | task | runs | first try | useful first try | repaired | fell back "
        "| no answer | raw ungrounded | raw leak | repair tokens |"
    )
    print("\n".join(table(result)))
    print(json_line(result))
    return result
