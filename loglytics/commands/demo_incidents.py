"""The demo's incidents: the live table, how they map onto the injected ones, Alertmanager.

Why the mapping is by tenant, source and opening time: an injected incident
is a cause switched on for one service between two offsets, and what an
alerting consumer should get is one incident opened for it. An incident
*opened for* an injected one is of its tenant, names its source and opened
on a window that starts between one window before the cause and one window
after it stopped (a window that straddles the start shows it; the effects of
a stop, such as a restart's drop, show in the window after). An incident
opened for none of them is `unmatched`: a page nobody injected.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx
from rich.table import Table

from loglytics.commands.findings import SEVERITY_STYLE
from loglytics.embedded.alertmanager import AlertmanagerProcess
from loglytics.prompts.detection import EXAMPLE
from loglytics.schemas import Finding, Incident
from loglytics.synthetic import Incident as Injected

ALERT_POLL_S = 2.0
COPIED_PHRASE_WORDS = 4
_WORD = re.compile(r"[a-z0-9]+(?:[-_.'][a-z0-9]+)*")


def keep_latest(incidents: dict[str, Incident], incident: Incident) -> None:
    """Hold each incident's highest version (events may be re-delivered)."""
    held = incidents.get(incident.incident_id)
    if held is None or incident.version >= held.version:
        incidents[incident.incident_id] = incident


def incidents_table(incidents: Iterable[Incident], now: float, limit: int = 8) -> Table:
    """Open incidents first (newest first), then resolved ones, dimmed."""
    table = Table(title="incidents", expand=True)
    for col in ("status", "severity", "tenant", "sources", "age", "findings", "title"):
        table.add_column(col, overflow="ellipsis", no_wrap=True)
    ordered = sorted(incidents, key=lambda i: (i.status != "open", -i.opened_at))
    for inc in ordered[:limit]:
        end = inc.resolved_at if inc.resolved_at is not None else now
        severity = f"[{SEVERITY_STYLE[inc.severity]}]{inc.severity}[/]"
        table.add_row(
            inc.status if inc.status == "open" else f"resolved ({inc.resolved_by or 'quiet'})",
            severity if inc.status == "open" else inc.severity,
            inc.tenant,
            ",".join(inc.sources),
            f"{max(0.0, end - inc.opened_at):.0f}s",
            str(inc.findings_count),
            inc.title[:60],
            style="dim" if inc.status == "resolved" else None,
        )
    return table


def opened_for(
    injected: Injected, incidents: Iterable[Incident], start_wall: float, window: float
) -> list[Incident]:
    """The incidents opened for one injected incident (see the module docstring)."""
    begin = start_wall + injected.start - window
    end = start_wall + injected.end + window
    return sorted(
        (
            i
            for i in incidents
            if i.tenant == injected.tenant
            and injected.source in i.sources
            and begin <= i.first_window_start < end
        ),
        key=lambda i: i.opened_at,
    )


def caught_by(
    finding: Finding | None, candidates: list[Incident], incidents: Iterable[Incident]
) -> Incident | None:
    """The incident holding the finding that caught an injected incident (else its first)."""
    if finding is not None:
        for inc in incidents:
            if finding.finding_id in inc.finding_ids:
                return inc
    return candidates[0] if candidates else None


def incident_totals(
    scenario_incidents: list[Injected],
    incidents: dict[str, Incident],
    start_wall: float,
    window: float,
) -> dict[str, int]:
    """`incidents_opened`, `unmatched_incidents` and `incidents_resolved` of the summary."""
    matched = {
        i.incident_id
        for inj in scenario_incidents
        for i in opened_for(inj, incidents.values(), start_wall, window)
    }
    return {
        "incidents_opened": len(incidents),
        "unmatched_incidents": len(incidents.keys() - matched),
        "incidents_resolved": sum(1 for i in incidents.values() if i.status == "resolved"),
    }


def all_resolved(incidents: dict[str, Incident]) -> bool:
    return bool(incidents) and all(i.status == "resolved" for i in incidents.values())


@dataclass
class AlertWatch:
    """What reached the demo's Alertmanager: every incident id it ever held as an active
    alert (polled), and how many it holds at the end."""

    alertmanager: AlertmanagerProcess
    seen: set[str] = field(default_factory=set)
    active_now: int = 0
    polls: int = 0

    async def watch(self, stop: asyncio.Event) -> None:
        async with httpx.AsyncClient(timeout=5.0) as client:
            while not stop.is_set():
                await self.poll(client)
                try:
                    await asyncio.wait_for(stop.wait(), ALERT_POLL_S)
                except TimeoutError:
                    pass
            await self.poll(client)

    async def poll(self, client: httpx.AsyncClient) -> None:
        alerts = await self.alertmanager.active_alerts(client)
        ids = {str(a.get("labels", {}).get("incident_id", "")) for a in alerts}
        ids.discard("")
        self.seen |= ids
        self.active_now = len(ids)
        self.polls += 1

    def summary(self, incidents: dict[str, Incident]) -> dict[str, Any]:
        return {
            "url": self.alertmanager.url,
            "incidents_alerted": len(self.seen),
            "incidents_not_alerted": len(incidents.keys() - self.seen),
            "active_at_end": self.active_now,
            "open_at_end": sum(1 for i in incidents.values() if i.status == "open"),
        }


def _phrases(text: str) -> set[tuple[str, ...]]:
    words = _WORD.findall(text.lower())
    n = COPIED_PHRASE_WORDS
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def _example_phrases() -> set[tuple[str, ...]]:
    """Every 4-word phrase of the detection prompt's example verdicts."""
    return set().union(
        *(
            _phrases(text)
            for v in EXAMPLE.verdicts
            for text in (v.title, v.summary, v.recommendation)
        )
    )


def copied_from_example(
    state_findings: dict[str, Finding], incidents: Iterable[Incident]
) -> dict[str, int]:
    """Findings and incidents whose title or summary holds a 4-word phrase of the prompt's
    example that their own evidence (templates, exemplar lines) does not."""
    example = _example_phrases()

    def own(findings: Iterable[Finding]) -> set[tuple[str, ...]]:
        texts = [t for f in findings for t in (*f.evidence.templates, *f.evidence.exemplars)]
        return set().union(*(_phrases(t) for t in texts))

    def copied(wording: str, evidence: set[tuple[str, ...]]) -> bool:
        return bool((_phrases(wording) & example) - evidence)

    findings = sum(
        1 for f in state_findings.values() if copied(f"{f.title}\n{f.summary}", own([f]))
    )
    incidents_copied = sum(
        1
        for i in incidents
        if copied(
            f"{i.title}\n{i.summary}",
            own(state_findings[fid] for fid in i.finding_ids if fid in state_findings),
        )
    )
    return {"findings": findings, "incidents": incidents_copied}
