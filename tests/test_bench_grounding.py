"""The grounding bench's bookkeeping, without a model: its inputs share no name with any
prompt, its rates add up, a cut run keeps the modes side by side, chat is scored."""

from __future__ import annotations

import asyncio
import functools
from typing import Any, cast

from loglytics.bench.grounding import (
    Plan,
    answered_first_try,
    bench,
    rates,
    report,
    round_calls,
    table,
    timed,
)
from loglytics.bench.grounding_inputs import INJECTION, chat_inputs, entry_inputs
from loglytics.prompts.grounding import identifiers, prompt_texts
from loglytics.providers import LLMPool, PoolError
from loglytics.tasks import PROMPTS
from loglytics.tasks.compact import Entry
from loglytics.tasks.entries import placeholders


def test_generated_inputs_share_no_name_with_any_prompt() -> None:
    shown: set[str] = set()
    for spec in PROMPTS.values():
        for text in prompt_texts(spec.system, spec.examples):
            shown.update(t.lower() for t in identifiers(text) if not t.isdigit())
    fake = placeholders([Entry("ERROR x", 1), Entry("WARN y", 2), Entry("INFO z", 1)] * 2)
    shown.update(t.lower() for e in fake for t in identifiers(e.line))
    lines = [line for case in entry_inputs(24) for line in case]
    lines += [c.message + "\n" + c.context for c in chat_inputs(24)]
    used = {t.lower() for line in lines for t in identifiers(line) if not t.isdigit()}
    assert used and used.isdisjoint(shown), used & shown
    assert entry_inputs(6) == entry_inputs(6)  # seeded: every mode reads the same inputs
    assert sum(INJECTION in case for case in entry_inputs(6)) == 2
    assert any(not c.context for c in chat_inputs(6)) and any(c.context for c in chat_inputs(6))


def test_rates_add_up_over_the_runs_that_asked_the_model() -> None:
    rows: list[dict[str, Any]] = [
        {
            "outcome": "first_try",
            "raw_ungrounded": False,
            "raw_leak": False,
            "useful": True,
            "s": 1.0,
        },
        {
            "outcome": "repaired",
            "raw_ungrounded": True,
            "raw_leak": True,
            "repair_tokens": 40,
            "s": 3.0,
        },
        {
            "outcome": "fell_back",
            "raw_ungrounded": True,
            "raw_leak": False,
            "repair_tokens": 60,
            "problem_recall": 0.5,
            "s": 4.0,
        },
        {"outcome": "no_answer", "error": "no_provider", "s": 60.0},
        {"outcome": "no_call", "s": 0.0},
    ]
    r = rates(rows)
    assert answered_first_try(rows) == round(1 / 3, 3)  # no_answer and no_call left out
    assert r["runs"] == 4 and r["no_call"] == 1
    assert r["first_try"] + r["repaired"] + r["fell_back"] + r["no_answer"] == 1.0
    assert r["raw_ungrounded"] == 0.5 and r["raw_leak"] == 0.25
    assert r["useful_first_try"] == 0.25
    assert r["repair_tokens"] == 100 and r["problem_recall"] == 0.5 and r["mean_s"] == 17.0


def test_every_cell_of_a_round_reads_the_same_input() -> None:
    plan = Plan(inputs=3, modes=("shaped", "none"), tasks=("detect-errors", "chat"))
    calls = round_calls(cast(LLMPool, None), plan, 1)
    assert list(calls) == [("shaped", "detect-errors"), ("none", "detect-errors"), (None, "chat")]
    partials = cast(dict[Any, functools.partial[Any]], calls)
    lines = {tuple(c.args[-1]) for cell, c in partials.items() if cell[0] is not None}
    assert lines == {tuple(entry_inputs(3)[1])}


async def test_a_call_without_an_answer_is_counted_not_raised() -> None:
    class Slow(PoolError):
        error = "no_provider"

    async def fails() -> dict[str, Any]:
        raise Slow("timeout")

    row = await timed(fails, asyncio.Semaphore(1))
    assert row["outcome"] == "no_answer" and row["error"] == "no_provider"


def test_the_report_names_the_best_mode_and_a_table_row_per_cell() -> None:
    plan = Plan(inputs=2, modes=("shaped", "none"), tasks=("analyze", "chat"))
    first = {"outcome": "first_try", "raw_ungrounded": False, "raw_leak": False, "s": 1.0}
    silent = {**first, "useful": False}  # passed the check by naming none of the errors
    first["useful"] = True
    fell = {"outcome": "fell_back", "raw_ungrounded": True, "raw_leak": True, "s": 2.0}
    rows: dict[Any, list[dict[str, Any]]] = {
        ("shaped", "analyze"): [first, fell],
        ("none", "analyze"): [silent, silent],
        (None, "chat"): [first],
    }
    result = report(plan, rows, rounds=1, seconds=5.0)
    assert result["best_mode"] == "shaped" and result["stopped_by_budget"] is True
    assert result["first_try_by_mode"] == {"shaped": 0.5, "none": 1.0}
    assert result["useful_first_try_by_mode"] == {"shaped": 0.5, "none": 0.0}
    assert result["first_try_answered_by_mode"] == {"shaped": 0.5, "none": 1.0}
    assert result["chat"]["first_try"] == 1.0 and result["shaped"]["analyze"]["raw_leak"] == 0.5
    assert len(table(result)) == 3 and table(result)[-1].startswith("| - | chat | 1 |")


async def test_a_run_out_of_budget_starts_no_round() -> None:
    plan = Plan(inputs=5, modes=("shaped",), tasks=("analyze",), budget_s=0.0)
    result = await bench("http://127.0.0.1:9", plan)  # nothing listens: no call is made
    assert result["rounds"] == 0 and result["stopped_by_budget"] is True
