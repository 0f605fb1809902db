"""analyze: a general reading of entries; issues picked by index, every total computed."""

from __future__ import annotations

from collections.abc import Sequence

from loglytics.prompts.analyze import (
    ANALYZE,
    Analysis,
    AnalysisPicks,
    EntryTotals,
    Issue,
    IssuePick,
)
from loglytics.prompts.choices import bounded_severity
from loglytics.tasks.base import TaskContext, TaskResult, cut, parse_input
from loglytics.tasks.compact import Compacted, EntriesInput, Entry
from loglytics.tasks.detect_errors import rule_severity
from loglytics.tasks.detect_errors import rules as error_rules
from loglytics.tasks.entries import EntriesTask, run_entries, valid_refs


def totals(packed: Compacted) -> EntryTotals:
    entries = packed.entries
    return EntryTotals(
        lines=packed.given,
        distinct=packed.unique,
        errors=sum(e.count for e in entries if e.rank == 0),
        warnings=sum(e.count for e in entries if e.rank == 1),
    )


def rules(entries: Sequence[Entry]) -> AnalysisPicks:
    """The error groups as issues; a summary that names only what was counted."""
    groups = error_rules(entries).groups
    issues = [
        IssuePick(entries=g.entries, type=g.category, severity=g.severity, message=g.message)
        for g in groups
    ]
    summary = (
        "No errors or warnings in the entries."
        if not issues
        else "Problems: " + ", ".join(g.category for g in groups)
    )
    return AnalysisPicks(
        summary=cut(summary, 100)[0], issues=issues, recommendations=[], confidence=0
    )


def derive(picks: AnalysisPicks, packed: Compacted) -> Analysis:
    entries = packed.entries
    issues: list[Issue] = []
    for pick in picks.issues:
        indices = valid_refs(pick.entries, entries, problems=False)
        if not indices:
            continue
        issues.append(
            Issue(
                type=pick.type,
                severity=bounded_severity(pick.severity, rule_severity(entries, indices)),
                message=pick.message,
                entries=indices,
                count=sum(entries[i].count for i in indices),
                lines=[entries[i].line for i in indices],
            )
        )
    return Analysis(
        summary=picks.summary,
        issues=issues,
        recommendations=picks.recommendations,
        confidence=picks.confidence,
        totals=totals(packed),
    )


ANALYZE_TASK: EntriesTask[AnalysisPicks, Analysis] = EntriesTask(
    spec=ANALYZE,
    picks=AnalysisPicks,
    refs=lambda p: [i for issue in p.issues for i in issue.entries],
    rules=rules,
    derive=derive,
    confidence=lambda d: d.confidence,
)


async def analyze(ctx: TaskContext) -> TaskResult:
    given = parse_input(EntriesInput, ctx.input)
    return await run_entries(ctx, ANALYZE_TASK, given.lines(), given.header())
