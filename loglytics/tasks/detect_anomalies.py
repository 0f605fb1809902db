"""detect-anomalies: unusual entries picked by the model; their counts and lines from code.

The deterministic answer names the rare error or warning entries among
repeated ones (or none): rules' wording is the entries' own lines.
"""

from __future__ import annotations

from collections.abc import Sequence

from loglytics.prompts.detect_anomalies import (
    DETECT_ANOMALIES,
    Anomaly,
    AnomalyPick,
    AnomalyPicks,
    DetectedAnomalies,
)
from loglytics.tasks.base import TaskContext, TaskResult, cut, parse_input
from loglytics.tasks.compact import Compacted, EntriesInput, Entry
from loglytics.tasks.entries import EntriesTask, problem_indices, run_entries, valid_refs

NOTHING = "Nothing unusual stands out in the entries."
RULES_CONFIDENCE = 50


def rules(entries: Sequence[Entry]) -> AnomalyPicks:
    """Rare error or warning entries (seen once while others repeat), at most three."""
    repeated = any(e.count > 1 for e in entries)
    rare = [i for i in problem_indices(entries) if entries[i].count == 1 and repeated]
    picks = [
        AnomalyPick(
            entries=[i],
            kind="rare_event",
            description=cut(entries[i].line, 80)[0],
            confidence=RULES_CONFIDENCE,
        )
        for i in rare[:3]
    ]
    return AnomalyPicks(anomalies=picks, summary="Rare problem lines." if picks else NOTHING)


def derive(picks: AnomalyPicks, packed: Compacted) -> DetectedAnomalies:
    entries = packed.entries
    found: list[Anomaly] = []
    for pick in picks.anomalies:
        indices = valid_refs(pick.entries, entries, problems=False)
        if not indices:
            continue
        found.append(
            Anomaly(
                kind=pick.kind,
                description=pick.description,
                confidence=pick.confidence,
                entries=indices,
                count=sum(entries[i].count for i in indices),
                lines=[entries[i].line for i in indices],
            )
        )
    return DetectedAnomalies(anomalies=found, summary=picks.summary if found else NOTHING)


DETECT_ANOMALIES_TASK: EntriesTask[AnomalyPicks, DetectedAnomalies] = EntriesTask(
    spec=DETECT_ANOMALIES,
    picks=AnomalyPicks,
    refs=lambda p: [i for a in p.anomalies for i in a.entries],
    rules=rules,
    derive=derive,
    confidence=lambda d: max((a.confidence for a in d.anomalies), default=None),
)


async def detect_anomalies(ctx: TaskContext) -> TaskResult:
    given = parse_input(EntriesInput, ctx.input)
    return await run_entries(ctx, DETECT_ANOMALIES_TASK, given.lines(), given.header())
