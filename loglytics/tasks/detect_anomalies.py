"""detect-anomalies: anomalies with confidence; the reply's score is the most confident one."""

from __future__ import annotations

from loglytics.prompts.detect_anomalies import DETECT_ANOMALIES, DetectedAnomalies
from loglytics.tasks.base import TaskContext, TaskResult, parse_input, percent
from loglytics.tasks.compact import EntriesInput
from loglytics.tasks.entries import read_entries, structured_result


async def detect_anomalies(ctx: TaskContext) -> TaskResult:
    given = parse_input(EntriesInput, ctx.input)
    result, packed = await read_entries(ctx, DETECT_ANOMALIES, given.lines())
    found = result.data_as(DetectedAnomalies).anomalies
    score = percent(max(a.confidence for a in found)) if found else None
    return structured_result(result, packed, score)
