"""The incidents stage's state per tenant, and its codec (one table row per tenant).

Why per tenant: the grouping rules compare a finding with every open
incident of its tenant, across sources, and the `findings` topic is keyed by
tenant, so a tenant's findings and its row share one partition and one
worker. The row is JSON (orjson), readable in the changelog; a row that does
not decode is treated as empty state rather than stopping the agent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from loglytics.schemas import DecodeError, Finding, Incident, Mute
from loglytics.schemas.base import LATEST

# Bounds, so one tenant's row stays small whatever it logs.
MAX_SEEN_FINDINGS = 4096  # recent finding ids remembered across resolutions (replay guard)
MAX_PREVIOUS = 2048  # templates whose last resolved incident is remembered
MAX_LISTED_FINDINGS = 200  # finding ids an incident's snapshot lists (the count is exact)
MAX_MUTES = 1024  # active mutes per tenant (the oldest dropped first)
# `seen` holds this prefix and the mute's id for a finding a mute held back.
MUTED_PREFIX = "muted:"


@dataclass
class OpenIncident:
    """An open incident: its snapshot (as of its latest event, plus changes that sent no
    event, such as a model's wording) and what the grouping rules need beyond it."""

    incident: Incident
    # rules.fired_key(source, family) -> window start of that source and family's latest firing.
    fired: dict[str, float] = field(default_factory=dict)
    # Dependencies its failing findings name (rules.dependency_names).
    names: list[str] = field(default_factory=list)
    window_seconds: float = 60.0
    # Detection time (`created_at`) of the latest finding that joined: the quiet clock.
    last_fired_at: float = 0.0
    # Distinct windows it fired in (their starts), for `windows_count`.
    windows: list[float] = field(default_factory=list)
    # Whether the summary is already a (grounded) model's sentence rather than the rules'.
    model_worded: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "incident": self.incident.to_json(),
            "fired": self.fired,
            "names": self.names,
            "window_seconds": self.window_seconds,
            "last_fired_at": self.last_fired_at,
            "windows": self.windows,
            "model_worded": self.model_worded,
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> OpenIncident:
        return cls(
            incident=Incident.from_obj(obj["incident"]),
            fired={str(k): float(v) for k, v in obj.get("fired", {}).items()},
            names=[str(n) for n in obj.get("names", [])],
            window_seconds=float(obj.get("window_seconds", 60.0)),
            last_fired_at=float(obj.get("last_fired_at", 0.0)),
            windows=[float(w) for w in obj.get("windows", [])],
            model_worded=bool(obj.get("model_worded", False)),
        )


@dataclass
class TenantIncidents:
    """Everything the stage keeps for one tenant."""

    # incident_id -> the open incident, oldest first (insertion order).
    open: dict[str, OpenIncident] = field(default_factory=dict)
    # The newest window end among the tenant's findings: event time, for replays.
    clock: float = 0.0
    # finding_id -> the incident it joined; bounded, oldest dropped first.
    seen: dict[str, str] = field(default_factory=dict)
    # template_id -> the incident it was part of when that resolved (recurrences name it).
    previous: dict[str, str] = field(default_factory=dict)
    # mute_id -> an active mute (schemas.feedback); an unmute removes it.
    mutes: dict[str, Mute] = field(default_factory=dict)

    def mute_for(self, finding: Finding) -> str | None:
        """The id of the mute that holds this finding back, if any.

        A finding seen before keeps its first answer (a model's verdict on a muted
        finding stays muted; one that already joined an incident stays in it).
        """
        known = self.seen.get(finding.finding_id)
        if known is not None:
            return known.removeprefix(MUTED_PREFIX) if known.startswith(MUTED_PREFIX) else None
        templates = finding.evidence.template_ids
        for mute in self.mutes.values():
            if mute.applies(templates, finding.source, finding.created_at):
                return mute.mute_id
        return None

    def add_mute(self, mute: Mute) -> None:
        self.mutes.pop(mute.mute_id, None)
        self.mutes[mute.mute_id] = mute
        while len(self.mutes) > MAX_MUTES:
            del self.mutes[next(iter(self.mutes))]

    def drop_expired_mutes(self, now: float) -> None:
        for mid in [
            m.mute_id for m in self.mutes.values() if m.until is not None and m.until <= now
        ]:
            del self.mutes[mid]

    def remember(self, finding_id: str, incident_id: str) -> None:
        self.seen[finding_id] = incident_id
        _bound(self.seen, MAX_SEEN_FINDINGS)

    def remember_resolved(self, incident: Incident) -> None:
        for template_id in incident.template_ids:
            self.previous.pop(template_id, None)
            self.previous[template_id] = incident.incident_id
        _bound(self.previous, MAX_PREVIOUS)


def _bound(mapping: dict[str, str], limit: int) -> None:
    while len(mapping) > limit:
        del mapping[next(iter(mapping))]


def dump_state(state: TenantIncidents) -> bytes:
    return orjson.dumps(
        {
            "open": {iid: inc.to_json() for iid, inc in state.open.items()},
            "clock": state.clock,
            "seen": state.seen,
            "previous": state.previous,
            "mutes": {mid: m.to_json() for mid, m in state.mutes.items()},
        }
    )


def load_state(raw: object) -> TenantIncidents:
    """The tenant's state from its table row (None or an undecodable row: empty state)."""
    if not isinstance(raw, bytes | bytearray | str) or not raw:
        return TenantIncidents()
    try:
        obj = orjson.loads(raw)
        return TenantIncidents(
            open={str(k): OpenIncident.from_json(v) for k, v in obj.get("open", {}).items()},
            clock=float(obj.get("clock", 0.0)),
            seen={str(k): str(v) for k, v in obj.get("seen", {}).items()},
            previous={str(k): str(v) for k, v in obj.get("previous", {}).items()},
            mutes={str(k): _mute(v) for k, v in obj.get("mutes", {}).items()},
        )
    except (orjson.JSONDecodeError, DecodeError, AttributeError, KeyError, TypeError, ValueError):
        return TenantIncidents()


def _mute(raw: object) -> Mute:
    """A stored mute; one written before times were bounded, lasting past what a stored
    time may be (a mute "for" 10**16 seconds), lasts until the last such time instead.

    Same meaning for anyone alive, and the tenant's row still loads: refusing the one
    mute would drop the whole row, open incidents and all, and re-open them as new."""
    if isinstance(raw, dict):
        until = raw.get("until")
        if isinstance(until, int | float) and until > LATEST.timestamp():
            raw = {**raw, "until": LATEST.timestamp()}
    return Mute.from_obj(raw)
