"""root-cause: the likely cause behind given entries or a stored finding.

A finding is read with `get_finding`, which filters by the requesting tenant:
another tenant's id reads as "not found", the same answer as an unknown id,
so ids cannot even be probed for existence.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from loglytics.prompts.choices import category_of
from loglytics.prompts.root_cause import ROOT_CAUSE, RootCause, RootCausePicks
from loglytics.schemas import Finding
from loglytics.storage.client import Client
from loglytics.storage.queries import get_finding
from loglytics.tasks.base import TaskContext, TaskResult, cut, invalid_input, parse_input
from loglytics.tasks.compact import ENTRIES, Compacted, Entry, entries_header, entry_lines
from loglytics.tasks.entries import EntriesTask, problem_indices, run_entries, valid_refs


class RootCauseInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    finding_id: str | None = Field(None, min_length=1, max_length=64)
    entries: list[str | dict[str, Any]] = Field(default_factory=list, validation_alias=ENTRIES)
    text: str | None = None
    prompt: str | None = None

    @model_validator(mode="after")
    def _some(self) -> RootCauseInput:
        if self.finding_id is None and not self.lines():
            raise ValueError("give a finding_id, entries (a list of log lines) or text")
        return self

    def lines(self) -> list[str]:
        return entry_lines(self.entries, self.text)


def finding_lines(f: Finding) -> list[str]:
    """A finding as lines the model reads like log entries."""
    lines = [
        f"Finding: [{f.severity}] {f.title} ({f.kind}, {f.category}) in source {f.source}",
        f"Summary: {f.summary}",
    ]
    for tid, template in zip(f.evidence.template_ids, f.evidence.templates, strict=False):
        count = f.evidence.counts.get(tid)
        lines.append(f"Pattern: {template}" + (f" (x{count})" if count else ""))
    lines.extend(f"Example: {e}" for e in f.evidence.exemplars)
    lines.extend(f"Signal: {s.kind} {s.detail}".rstrip() for s in f.evidence.signals)
    return lines


def rules(entries: Sequence[Entry]) -> RootCausePicks:
    """The deterministic answer: the most repeated problem line, quoted, as the likely cause."""
    ranked = problem_indices(entries) or sorted(
        range(len(entries)), key=lambda i: (-entries[i].count, i)
    )
    top = ranked[:3]
    cause = f"Most repeated problem line: {entries[top[0]].line}" if top else "No entries."
    return RootCausePicks(
        root_cause=cut(cause, 120)[0],
        category=category_of(entries[top[0]].line) if top else "other",
        evidence=top,
        recommendation="",
        confidence=0,
    )


def derive(picks: RootCausePicks, packed: Compacted) -> RootCause:
    evidence = valid_refs(picks.evidence, packed.entries, problems=False)
    return RootCause(
        root_cause=picks.root_cause,
        category=picks.category,
        evidence=[packed.entries[i].line for i in evidence],
        evidence_entries=evidence,
        recommendation=picks.recommendation,
        confidence=picks.confidence,
    )


ROOT_CAUSE_TASK: EntriesTask[RootCausePicks, RootCause] = EntriesTask(
    spec=ROOT_CAUSE,
    picks=RootCausePicks,
    refs=lambda p: p.evidence,
    rules=rules,
    derive=derive,
    confidence=lambda d: d.confidence,
)


async def root_cause(ctx: TaskContext) -> TaskResult:
    given = parse_input(RootCauseInput, ctx.input)
    lines: list[str] = []
    if given.finding_id is not None:
        fid, tenant = given.finding_id, ctx.tenant

        def fetch(client: Client) -> Finding | None:
            return get_finding(client, tenant, fid)

        finding = await ctx.storage.run(fetch)
        if finding is None:
            raise invalid_input(f"finding {fid!r} not found")
        lines = finding_lines(finding)
    lines.extend(given.lines())
    return await run_entries(ctx, ROOT_CAUSE_TASK, lines, entries_header(given.prompt))
