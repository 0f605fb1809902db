"""The shared path of the tasks that read log entries: compact, number, ask grounded, derive.

Entries are numbered in the prompt (`[3] [x12] line`) so a model names them by
index; each task derives its reply's figures from the entries named (`derive`)
and, when the model's output cannot be grounded, from its rules' picks
(`rules`, the deterministic answer: computed figures and the entries' own
lines). The few-shot example is the spec's, none, or one built from the
request's shape: the same number of entries, levels and counts, with
placeholder content the grounding check would refuse if copied.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from pydantic import BaseModel

from loglytics.prompts.base import FewShot, PromptSpec
from loglytics.prompts.grounding import Ground, prompt_texts
from loglytics.tasks.base import ExampleMode, TaskContext, TaskResult
from loglytics.tasks.compact import Compacted, Entry, compact
from loglytics.tasks.grounded import Asked, ask_grounded

P = TypeVar("P", bound=BaseModel)
D = TypeVar("D", bound=BaseModel)

INDEX_CHARS = 6
"""Room each numbered line needs for its `[i] ` prefix."""
SHAPED_ENTRIES = 4
_LEVELS = ("ERROR", "WARN", "INFO")
_VERBS = ("failed on", "slow on", "done on")


def _always(packed: Compacted) -> bool:
    return True


@dataclass(frozen=True)
class EntriesTask(Generic[P, D]):
    """One entries task: its prompt, what the model picks, and how code turns picks into data.

    `derive` returns None when the picks name nothing usable although the rules
    would (the reply is then the rules' answer); `needs_model` False answers
    from the rules without a call (nothing for the model to judge).
    """

    spec: PromptSpec
    picks: type[P]
    refs: Callable[[P], Iterable[int]]
    rules: Callable[[Sequence[Entry]], P]
    derive: Callable[[P, Compacted], D | None]
    confidence: Callable[[D], int | None]
    needs_model: Callable[[Compacted], bool] = field(default=_always)


@dataclass(frozen=True)
class Answered(Generic[P, D]):
    """A task's reply data, and how its model output fared (None: no call was made)."""

    data: D
    asked: Asked[P] | None
    packed: Compacted


def numbered(entries: Sequence[Entry]) -> str:
    """The entries as the model reads them: index, [xN] when repeated, the line."""
    return "\n".join(
        f"[{i}] " + (f"[x{e.count}] " if e.count > 1 else "") + e.line
        for i, e in enumerate(entries)
    )


def placeholders(entries: Sequence[Entry]) -> tuple[Entry, ...]:
    """Entries with the request's shape (levels, counts) and content of its own."""
    return tuple(
        Entry(f"{_LEVELS[e.rank]} unit-q{i}: job j-{i}0{i} {_VERBS[e.rank]} node-x{i}", e.count)
        for i, e in enumerate(entries[:SHAPED_ENTRIES])
    )


def examples_for(
    mode: ExampleMode, task: EntriesTask[P, D], entries: Sequence[Entry]
) -> tuple[FewShot, ...]:
    if mode == "static":
        return tuple(task.spec.examples)
    if mode == "none":
        return ()
    fake = placeholders(entries)
    return (FewShot(f"Entries:\n{numbered(fake)}", task.rules(fake)),)


def problem_indices(entries: Sequence[Entry]) -> list[int]:
    """Error then warning entries, most repeated first."""
    found = [i for i, e in enumerate(entries) if e.rank < 2]
    return sorted(found, key=lambda i: (entries[i].rank, -entries[i].count, i))


def valid_refs(refs: Iterable[int], entries: Sequence[Entry], *, problems: bool) -> list[int]:
    """`refs` that exist (and, with `problems`, are errors or warnings), each once, in order."""
    return [
        i
        for i in dict.fromkeys(refs)
        if 0 <= i < len(entries) and (not problems or entries[i].rank < 2)
    ]


async def answer(
    ctx: TaskContext, task: EntriesTask[P, D], lines: list[str], header: str = "Entries:"
) -> Answered[P, D]:
    """Compact and number `lines`, ask for grounded picks, derive the reply's data."""
    spec = task.spec
    limit = ctx.max_tokens(spec)
    room = ctx.input_budget(spec, limit) - len(header) - INDEX_CHARS * min(len(lines), 200)
    packed = compact(lines, budget_chars=max(128, room))
    rules_data = task.derive(task.rules(packed.entries), packed)
    assert rules_data is not None, "the rules' own picks always derive"
    if not task.needs_model(packed):
        return Answered(rules_data, None, packed)
    user = f"{header}\n{numbered(packed.entries)}"
    examples = examples_for(ctx.examples, task, packed.entries)
    shown = prompt_texts(spec.system, (*spec.examples, *examples))
    ground = Ground.of(user, shown, index_count=len(packed.entries))
    asked = await ask_grounded(
        ctx, spec, user, ground, task.picks, task.refs, max_tokens=limit, examples=examples
    )
    data = task.derive(asked.value, packed) if asked.value is not None else None
    if data is None:
        return Answered(rules_data.model_copy(update={"grounded": False}), asked, packed)
    return Answered(data, asked, packed)


def entries_result(ctx: TaskContext, task: EntriesTask[P, D], done: Answered[P, D]) -> TaskResult:
    """The reply: the derived data as text and `data`; grounded unless the rules answered."""
    grounded = bool(getattr(done.data, "grounded", True))
    confidence = task.confidence(done.data) if done.asked is not None and grounded else None
    last = ctx.calls[-1] if ctx.calls else None
    return TaskResult(
        text=done.data.model_dump_json(),
        data=done.data.model_dump(mode="json"),
        confidence=None if confidence is None else max(0.0, min(1.0, confidence / 100)),
        truncated=done.packed.truncated or bool(last and last.truncated),
        grounded=None if done.asked is None else grounded,
    )


async def run_entries(
    ctx: TaskContext, task: EntriesTask[P, D], lines: list[str], header: str = "Entries:"
) -> TaskResult:
    return entries_result(ctx, task, await answer(ctx, task, lines, header))
