"""Ask, check, repair once, else fall back: how every task gets a grounded model output.

The model's output is checked by `prompts.grounding` against the input it was
shown. One that fails gets one repair round whose user turn says what failed;
one that fails again (or that the pool could not make valid) is dropped, and
the caller answers deterministically. The outcome is counted per task and
provider, and kept on the result so a bench can score the unchecked first
output too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from pydantic import BaseModel

from loglytics.prompts.base import FewShot, PromptSpec
from loglytics.prompts.grounding import Failure, Ground, Outcome, repair_note, strings_of
from loglytics.providers import InvalidOutput, PoolResult
from loglytics.tasks.base import TaskContext

log = logging.getLogger(__name__)

P = TypeVar("P", bound=BaseModel)


@dataclass(frozen=True)
class Asked(Generic[P]):
    """A grounded output (None: fall back), how it got there, and the unchecked first one."""

    value: P | None
    outcome: Outcome
    first: P | None
    first_failures: tuple[Failure, ...]
    repair_tokens: int = 0

    @property
    def grounded(self) -> bool:
        return self.value is not None


def _parsed(result: PoolResult, output: type[P]) -> P | None:
    data = result.data
    return data if isinstance(data, output) else None


async def ask_grounded(
    ctx: TaskContext,
    spec: PromptSpec,
    user: str,
    ground: Ground,
    output: type[P],
    refs: Callable[[P], Iterable[int]],
    *,
    max_tokens: int,
    examples: Sequence[FewShot] | None = None,
    texts: Callable[[P], Iterable[str]] = strings_of,
) -> Asked[P]:
    """One grounded output of `spec` for `user`, or None after one failed repair round.

    `texts` are the output's strings to check (default: all it wrote freely).
    """

    def failures(value: P | None) -> tuple[Failure, ...]:
        if value is None:
            return (Failure("index", "invalid output"),)
        return ground.check(texts(value), refs(value))

    provider = ""
    try:
        first = await ctx.generate(
            spec, user, max_tokens=max_tokens, stream=False, examples=examples
        )
    except InvalidOutput as exc:
        log.info("%s: no valid output (%s); answering from the rules", spec.task, exc.message)
        _count(ctx, spec.task, provider, "fell_back", 0)
        return Asked(None, "fell_back", None, ())
    provider = first.provider
    value = _parsed(first, output)
    first_failures = failures(value)
    if not first_failures:
        _count(ctx, spec.task, provider, "first_try", 0)
        return Asked(value, "first_try", value, ())
    history = [
        {"role": "user", "content": user},
        {"role": "assistant", "content": first.text},
    ]
    try:
        second = await ctx.generate(
            spec,
            repair_note(first_failures),
            history=history,
            max_tokens=max_tokens,
            stream=False,
            examples=examples,
        )
    except InvalidOutput:
        _count(ctx, spec.task, provider, "fell_back", 0)
        return Asked(None, "fell_back", value, first_failures)
    spent = second.usage.total
    fixed = _parsed(second, output)
    if failures(fixed):
        _count(ctx, spec.task, second.provider, "fell_back", spent)
        return Asked(None, "fell_back", value, first_failures, spent)
    _count(ctx, spec.task, second.provider, "repaired", spent)
    return Asked(fixed, "repaired", value, first_failures, spent)


def _count(ctx: TaskContext, task: str, provider: str, outcome: Outcome, tokens: int) -> None:
    if ctx.grounding is not None:
        ctx.grounding.record(task, provider or "none", outcome, tokens)
