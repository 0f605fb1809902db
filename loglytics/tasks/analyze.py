"""analyze: summary, issues and recommendations for given log entries."""

from __future__ import annotations

from loglytics.prompts.analyze import ANALYZE, Analysis
from loglytics.tasks.base import TaskContext, TaskResult, parse_input, percent
from loglytics.tasks.compact import EntriesInput
from loglytics.tasks.entries import read_entries, structured_result


async def analyze(ctx: TaskContext) -> TaskResult:
    given = parse_input(EntriesInput, ctx.input)
    result, packed = await read_entries(ctx, ANALYZE, given.lines())
    return structured_result(result, packed, percent(result.data_as(Analysis).confidence))
