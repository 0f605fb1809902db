"""detect-errors: error groups picked by the model, counted by code.

Only entries whose own level is an error or a warning can be in a group, so
input without errors answers with no groups and no LLM call. A group's
severity is the model's, bounded by the rules' (never lower, at most one
step higher: `bounded_severity`).
"""

from __future__ import annotations

from collections.abc import Sequence

from loglytics.prompts.choices import bounded_severity, category_of, severity_of
from loglytics.prompts.detect_errors import DETECT_ERRORS, DetectedErrors, ErrorGroup, ErrorPick
from loglytics.prompts.detect_errors import ErrorPicks as Picks
from loglytics.schemas import Severity
from loglytics.tasks.base import TaskContext, TaskResult, cut, parse_input
from loglytics.tasks.compact import Compacted, EntriesInput, Entry
from loglytics.tasks.entries import EntriesTask, problem_indices, run_entries, valid_refs

MAX_GROUPS = 3
NO_ERRORS = "No errors in the entries."


def rule_severity(entries: Sequence[Entry], indices: Sequence[int]) -> Severity:
    """The highest level among the entries, as a severity."""
    order = ("low", "medium", "high", "critical")
    return max((severity_of(entries[i].line) for i in indices), key=order.index)


def rules(entries: Sequence[Entry]) -> Picks:
    """The deterministic answer: error and warning entries grouped by category."""
    by_category: dict[str, list[int]] = {}
    for i in problem_indices(entries):
        by_category.setdefault(category_of(entries[i].line), []).append(i)
    groups = [
        ErrorPick(
            entries=indices[:6],
            category=category_of(entries[indices[0]].line),
            severity=rule_severity(entries, indices[:6]),
            message=cut(entries[indices[0]].line, 64)[0],
        )
        for indices in list(by_category.values())[:MAX_GROUPS]
    ]
    kinds = ", ".join(g.category for g in groups)
    return Picks(groups=groups, summary=cut(f"Errors: {kinds}.", 80)[0] if groups else NO_ERRORS)


def derive(picks: Picks, packed: Compacted) -> DetectedErrors | None:
    """Groups over existing error entries (each entry counted once), counts summed by code."""
    entries = packed.entries
    used: set[int] = set()
    groups: list[ErrorGroup] = []
    for pick in picks.groups:
        indices = [i for i in valid_refs(pick.entries, entries, problems=True) if i not in used]
        if not indices:
            continue
        used.update(indices)
        groups.append(
            ErrorGroup(
                category=pick.category,
                severity=bounded_severity(pick.severity, rule_severity(entries, indices)),
                count=sum(entries[i].count for i in indices),
                message=pick.message,
                entries=indices,
                lines=[entries[i].line for i in indices],
            )
        )
    if not groups and problem_indices(entries):
        return None  # the picks missed every error there is: the rules answer
    return DetectedErrors(
        errors=groups,
        total_errors=sum(g.count for g in groups),
        summary=picks.summary if groups else NO_ERRORS,
    )


def _has_errors(packed: Compacted) -> bool:
    return bool(problem_indices(packed.entries))


DETECT_ERRORS_TASK: EntriesTask[Picks, DetectedErrors] = EntriesTask(
    spec=DETECT_ERRORS,
    picks=Picks,
    refs=lambda p: [i for g in p.groups for i in g.entries],
    rules=rules,
    derive=derive,
    confidence=lambda d: None,
    needs_model=_has_errors,
)


async def detect_errors(ctx: TaskContext) -> TaskResult:
    given = parse_input(EntriesInput, ctx.input)
    return await run_entries(ctx, DETECT_ERRORS_TASK, given.lines(), given.header())
