"""Incidents: one actionable alert per problem, grouping the findings that show it.

Why a separate record from `Finding`: a problem that lasts seven windows is
seven findings but one page. The `incidents` topic (keyed by tenant) carries
one `Incident` snapshot per lifecycle event: `opened`, `updated` (only when the
severity rises or something new joins, never once per window) and `resolved`.

Idempotence: `incident_id` is derived from the tenant and the finding that
opened it, and `version` counts the incident's events (1 is `opened`), so a
replay re-derives the same `(incident_id, version)` pairs: consumers dedupe on
`event_id`, and ClickHouse's ReplacingMergeTree keeps the highest version.
"""

from __future__ import annotations

import hashlib
from typing import Literal

from pydantic import Field

from loglytics.schemas.base import EpochSeconds, Record
from loglytics.schemas.findings import Severity, SignalKind

IncidentStatus = Literal["open", "resolved"]
IncidentEvent = Literal["opened", "updated", "resolved"]
# Why an incident resolved: quiet for the configured windows, or by a person.
ResolvedBy = Literal["", "quiet", "user"]


class Incident(Record):
    """An incident as of one of its events (the whole state, not a delta)."""

    incident_id: str
    tenant: str
    event: IncidentEvent
    version: int = Field(ge=1)
    status: IncidentStatus
    sources: list[str] = Field(default_factory=list)
    severity: Severity
    title: str
    summary: str
    opened_at: EpochSeconds
    updated_at: EpochSeconds
    resolved_at: EpochSeconds | None = None
    finding_ids: list[str] = Field(default_factory=list)
    template_ids: list[str] = Field(default_factory=list)
    signal_kinds: list[SignalKind] = Field(default_factory=list)
    findings_count: int = Field(0, ge=0)
    windows_count: int = Field(0, ge=0)
    first_window_start: EpochSeconds
    last_window_end: EpochSeconds
    # The incident this one's pattern had opened before it resolved (a recurrence).
    previous_incident_id: str | None = None
    # Feedback state.
    acknowledged: bool = False
    resolved_by: ResolvedBy = ""

    @property
    def event_id(self) -> str:
        """Unique per event and equal across replays: what receivers dedupe on."""
        return f"{self.incident_id}:{self.version}"


def incident_id(tenant: str, opening_finding_id: str) -> str:
    """Deterministic id from what opened the incident: a replay opens the same id."""
    raw = f"{tenant}\x1fincident\x1f{opening_finding_id}".encode()
    return hashlib.blake2b(raw, digest_size=12).hexdigest()
