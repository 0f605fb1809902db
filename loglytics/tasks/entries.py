"""The shared path of the tasks that read log entries: compact, prompt, validate."""

from __future__ import annotations

from pydantic import BaseModel

from loglytics.prompts.base import PromptSpec
from loglytics.providers import PoolResult
from loglytics.tasks.base import TaskContext, TaskResult
from loglytics.tasks.compact import Compacted, compact


async def read_entries(
    ctx: TaskContext, spec: PromptSpec, lines: list[str], header: str = "Entries:"
) -> tuple[PoolResult, Compacted]:
    """Compact `lines` into the context left by the prompt and the reply, then ask."""
    limit = ctx.max_tokens(spec)
    packed = compact(lines, budget_chars=ctx.input_budget(spec, limit) - len(header))
    result = await ctx.generate(spec, f"{header}\n{packed.text}", max_tokens=limit)
    return result, packed


def structured_result(
    result: PoolResult, packed: Compacted, confidence: float | None
) -> TaskResult:
    """Reply text is the model's JSON as generated; `data` is that JSON, validated."""
    data = result.data.model_dump(mode="json") if isinstance(result.data, BaseModel) else None
    return TaskResult(
        text=result.text,
        data=data,
        confidence=confidence,
        truncated=packed.truncated or result.truncated,
    )
