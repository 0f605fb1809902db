"""An incident's lifecycle: open, join, revise, resolve; pure functions on a tenant's state.

Why pure: the agent only loads a tenant's row, calls `absorb` (per finding) or
`tick` (per timer beat) and sends the events returned, so everything that
decides what an alerting consumer sees is tested in process.

Events: `opened` (version 1); `updated` only when the severity rises or
something new joins (a template, a source or a signal kind); `resolved`. A
finding that repeats what the incident already holds (the next window of the
same exception) changes its counts silently. Findings come twice for a
judged pattern, the rules' first and the model's verdict later under the
same `finding_id`: the second revises the finding's incident (its severity,
its wording), never opens another, and sends an event only if the severity rose.

Resolution: after `resolve_windows` (K) windows with none of the incident's
patterns firing, by either clock, whichever sees it first:
- event time, for replays of old logs: a finding of the tenant whose window
  ends at C proves the windows before it passed, so an incident last firing in
  a window ending at E resolves once C - E >= (K + 1) windows;
- detection time, for a tenant that went quiet altogether: `tick` resolves an
  incident whose latest finding was detected (K + 1/2) windows ago (the half
  window leaves the last of the K windows time to be detected).

Feedback (`apply_feedback`): an acknowledgement is an `updated` event with
`acknowledged` set; a resolution by hand is a `resolved` event with
`resolved_by` "user"; a mute is kept in the tenant's state and holds back
every later finding on its templates (and sources): such a finding opens and
joins nothing, so no event and no delivery, and the stage stores it flagged
`muted`. An unmute removes the mute; findings after it open incidents again.
Each is idempotent: a replayed ack of an acknowledged incident, a resolve of
a resolved one or a mute already held change nothing.

Idempotence: ids derive from the opening finding and versions count events,
so a replay of the same findings re-derives the same `(incident_id, version)`;
a finding already absorbed (`TenantIncidents.seen`) changes nothing unless it
raises the severity, and one whose incident resolved is ignored.
"""

from __future__ import annotations

from dataclasses import dataclass

from loglytics.incidents.rules import (
    dependency_names,
    families,
    fired_key,
    joinable_families,
    same_or_next_window,
    signal_kinds,
    windows_overlap,
)
from loglytics.incidents.state import (
    MAX_LISTED_FINDINGS,
    MUTED_PREFIX,
    OpenIncident,
    TenantIncidents,
)
from loglytics.schemas import (
    SEVERITIES,
    Finding,
    Incident,
    IncidentEvent,
    IncidentFeedback,
    ResolvedBy,
    Severity,
    incident_id,
)

SEVERITY_RANK: dict[Severity, int] = {s: i for i, s in enumerate(SEVERITIES)}
TICK_MARGIN_WINDOWS = 0.5


@dataclass(frozen=True)
class Lifecycle:
    """The lifecycle rules, configured once (K from `INCIDENT_RESOLVE_WINDOWS`)."""

    resolve_windows: int = 3

    def absorb(self, state: TenantIncidents, finding: Finding) -> list[Incident]:
        """The events one finding causes (possibly none), applied to the tenant's state."""
        state.clock = max(state.clock, finding.window_end)
        events = self._resolve_by_clock(state, at=finding.created_at)
        if finding.muted:
            return events  # the stage's own copy of a muted finding, flagged for storage
        if (mute := state.mute_for(finding)) is not None:
            state.remember(finding.finding_id, MUTED_PREFIX + mute)
            return events
        known = state.seen.get(finding.finding_id)
        if known is not None:
            current = state.open.get(known)
            if current is not None and (event := _revise(current, finding)) is not None:
                events.append(event)
            return events  # absorbed before: a verdict, a replay, or its incident resolved
        target = _match(state, finding)
        if target is None:
            opened = _open(state, finding)
            state.open[opened.incident.incident_id] = opened
            events.append(opened.incident)
            target = opened
        elif (event := _join(target, finding)) is not None:
            events.append(event)
        state.remember(finding.finding_id, target.incident.incident_id)
        return events

    def tick(self, state: TenantIncidents, now: float) -> list[Incident]:
        """Resolve the incidents whose patterns have been quiet K windows by detection time."""
        state.drop_expired_mutes(now)
        quiet = self.resolve_windows + TICK_MARGIN_WINDOWS
        stale = [
            iid
            for iid, inc in state.open.items()
            if now - inc.last_fired_at >= quiet * inc.window_seconds
        ]
        return [resolve(state, iid, at=now, by="quiet") for iid in stale]

    def apply_feedback(self, state: TenantIncidents, feedback: IncidentFeedback) -> list[Incident]:
        """A person's word on the tenant's incidents; the events it causes (maybe none)."""
        iid = feedback.incident_id
        current = state.open.get(iid)
        if feedback.action == "ack" and current is not None and not current.incident.acknowledged:
            snap = current.incident
            current.incident = snap.model_copy(
                update={
                    "acknowledged": True,
                    "updated_at": max(snap.updated_at, feedback.created_at),
                }
            )
            return [_emit(current, "updated")]
        if feedback.action == "resolve" and current is not None:
            return [resolve(state, iid, at=feedback.created_at, by="user")]
        if feedback.mute is not None and feedback.action == "mute" and feedback.mute.active:
            state.add_mute(feedback.mute)
        elif feedback.mute is not None and feedback.action in ("mute", "unmute"):
            state.mutes.pop(feedback.mute.mute_id, None)
        return []

    def _resolve_by_clock(self, state: TenantIncidents, at: float) -> list[Incident]:
        stale = [
            iid
            for iid, inc in state.open.items()
            if state.clock - inc.incident.last_window_end
            >= (self.resolve_windows + 1) * inc.window_seconds - 1e-6
        ]
        return [resolve(state, iid, at=at, by="quiet") for iid in stale]


def resolve(state: TenantIncidents, iid: str, *, at: float, by: ResolvedBy) -> Incident:
    """Close an open incident; its templates remember it, so a recurrence names it."""
    current = state.open.pop(iid)
    snapshot = current.incident.model_copy(
        update={
            "event": "resolved",
            "version": current.incident.version + 1,
            "status": "resolved",
            "resolved_at": max(at, current.incident.updated_at),
            "updated_at": max(at, current.incident.updated_at),
            "resolved_by": by,
        }
    )
    state.remember_resolved(snapshot)
    return snapshot


def _match(state: TenantIncidents, finding: Finding) -> OpenIncident | None:
    """The open incident the finding joins (see `loglytics.incidents.rules`), if any."""
    incidents = list(state.open.values())
    templates = set(finding.evidence.template_ids)
    for inc in incidents:
        if templates & set(inc.incident.template_ids):
            return inc
    joinable = set().union(*(joinable_families(f) for f in families(finding)))
    for inc in incidents:
        for family in sorted(joinable):
            fired = inc.fired.get(fired_key(finding.source, family))
            if fired is not None and same_or_next_window(
                finding.window_start, fired, inc.window_seconds
            ):
                return inc
    names = dependency_names(finding)
    if not names:
        return None
    for inc in incidents:
        snap = inc.incident
        if (
            names & set(inc.names)
            and finding.source not in snap.sources
            and windows_overlap(
                finding.window_start,
                finding.window_end,
                snap.first_window_start,
                snap.last_window_end,
            )
        ):
            return inc
    return None


def _open(state: TenantIncidents, finding: Finding) -> OpenIncident:
    templates = list(dict.fromkeys(finding.evidence.template_ids))
    previous = next((state.previous[t] for t in templates if t in state.previous), None)
    incident = Incident(
        incident_id=incident_id(finding.tenant, finding.finding_id),
        tenant=finding.tenant,
        event="opened",
        version=1,
        status="open",
        sources=[finding.source],
        severity=finding.severity,
        title=finding.title,
        summary=finding.summary,
        opened_at=finding.created_at,
        updated_at=finding.created_at,
        finding_ids=[finding.finding_id],
        template_ids=templates,
        signal_kinds=signal_kinds(finding),
        findings_count=1,
        windows_count=1,
        first_window_start=finding.window_start,
        last_window_end=finding.window_end,
        previous_incident_id=previous,
    )
    opened = OpenIncident(
        incident=incident,
        fired={fired_key(finding.source, f): finding.window_start for f in families(finding)},
        names=sorted(dependency_names(finding)),
        window_seconds=_window_seconds(finding),
        last_fired_at=finding.created_at,
        windows=[finding.window_start],
        model_worded=finding.model_used != "rules",
    )
    return opened


def _join(current: OpenIncident, finding: Finding) -> Incident | None:
    """Fold a new finding in; an event only if it brings something new or more severe."""
    snap = current.incident
    kinds = signal_kinds(finding)
    new_templates = [t for t in finding.evidence.template_ids if t not in snap.template_ids]
    new_kinds = [k for k in kinds if k not in snap.signal_kinds]
    new_source = finding.source not in snap.sources
    rose = SEVERITY_RANK[finding.severity] > SEVERITY_RANK[snap.severity]
    for family in families(finding):
        key = fired_key(finding.source, family)
        current.fired[key] = max(current.fired.get(key, finding.window_start), finding.window_start)
    current.names = sorted(set(current.names) | dependency_names(finding))
    current.last_fired_at = max(current.last_fired_at, finding.created_at)
    if finding.window_start not in current.windows:
        current.windows = sorted([*current.windows, finding.window_start])[-MAX_LISTED_FINDINGS:]
    update: dict[str, object] = {
        "sources": [*snap.sources, finding.source] if new_source else snap.sources,
        "template_ids": [*snap.template_ids, *new_templates],
        "signal_kinds": [*snap.signal_kinds, *new_kinds],
        "finding_ids": [*snap.finding_ids, finding.finding_id][-MAX_LISTED_FINDINGS:],
        "findings_count": snap.findings_count + 1,
        "windows_count": max(snap.windows_count, len(current.windows)),
        "first_window_start": min(snap.first_window_start, finding.window_start),
        "last_window_end": max(snap.last_window_end, finding.window_end),
        "updated_at": max(snap.updated_at, finding.created_at),
        "severity": finding.severity if rose else snap.severity,
    }
    current.incident = snap.model_copy(update=update)
    _take_wording(current, finding)
    if new_templates or new_kinds or new_source or rose:
        return _emit(current, "updated")
    return None


def _revise(current: OpenIncident, finding: Finding) -> Incident | None:
    """A finding seen before (the model's verdict on it, or a replay): severity and wording."""
    _take_wording(current, finding)
    snap = current.incident
    if SEVERITY_RANK[finding.severity] <= SEVERITY_RANK[snap.severity]:
        return None
    current.incident = snap.model_copy(
        update={
            "severity": finding.severity,
            "updated_at": max(snap.updated_at, finding.created_at),
        }
    )
    return _emit(current, "updated")


def _take_wording(current: OpenIncident, finding: Finding) -> None:
    """The first model-worded finding gives the incident its summary (the detection stage
    keeps only grounded wording); the rules' title of the opening finding stays otherwise."""
    if current.model_worded or finding.model_used == "rules":
        return
    update: dict[str, object] = {"summary": finding.summary}
    if current.incident.finding_ids and current.incident.finding_ids[0] == finding.finding_id:
        update["title"] = finding.title
    current.incident = current.incident.model_copy(update=update)
    current.model_worded = True


def _emit(current: OpenIncident, event: IncidentEvent) -> Incident:
    current.incident = current.incident.model_copy(
        update={"event": event, "version": current.incident.version + 1}
    )
    return current.incident


def _window_seconds(finding: Finding) -> float:
    length = finding.window_end - finding.window_start
    return length if length > 0 else 60.0
