"""detect-errors: error groups with counts, categories and severity."""

from __future__ import annotations

from loglytics.prompts.detect_errors import DETECT_ERRORS
from loglytics.tasks.base import TaskContext, TaskResult, parse_input
from loglytics.tasks.compact import EntriesInput
from loglytics.tasks.entries import read_entries, structured_result


async def detect_errors(ctx: TaskContext) -> TaskResult:
    given = parse_input(EntriesInput, ctx.input)
    result, packed = await read_entries(ctx, DETECT_ERRORS, given.lines())
    return structured_result(result, packed, None)
