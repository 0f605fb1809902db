"""One worker's incidents: tenants' state rows in the table, events out to `incidents`.

Order of effects per tenant: events are sent before the state row is
written. A crash between the two re-delivers the findings, and the lifecycle
re-derives the very same events (same ids and versions) for consumers to
dedupe; the other order could lose events.

Muted findings: a finding a mute holds back is sent once more to `findings`,
flagged `muted` (same `finding_id`, so the store's latest row is the flagged
one; a model's later verdict on it is flagged again). The stage ignores its
own flagged copies. Detection never learns of mutes, so baselines keep learning.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, MutableMapping

import faust
from faust.types import RecordMetadata

from loglytics.incidents.delivery import AlertmanagerSink
from loglytics.incidents.lifecycle import Lifecycle
from loglytics.incidents.state import TenantIncidents, dump_state, load_state
from loglytics.schemas import Finding, Incident, IncidentFeedback

log = logging.getLogger(__name__)

STATE_DETAIL = "incidents"


def state_key(tenant: str) -> bytes:
    """The tenant's row: `tenant#incidents`, on the partition of the tenant's findings."""
    return f"{tenant}#{STATE_DETAIL}".encode()


class IncidentStage:
    """Findings folded into incidents per tenant; the timer resolves quiet ones."""

    def __init__(
        self,
        lifecycle: Lifecycle,
        *,
        table: MutableMapping[bytes, object],
        incidents_out: faust.TopicT,
        owns: Callable[[bytes], bool],
        alertmanager: AlertmanagerSink | None = None,
        findings_out: faust.TopicT | None = None,
    ) -> None:
        self.lifecycle = lifecycle
        self.table = table
        self.incidents_out = incidents_out
        self.owns = owns
        self.alertmanager = alertmanager
        self.findings_out = findings_out
        self.lock = asyncio.Lock()
        # Tenants' new state while its events are on their way (see `_commit`): what the
        # Alertmanager re-post reads meanwhile, so it never revives a just-resolved alert.
        self.committing: dict[bytes, TenantIncidents] = {}

    async def send(self, incident: Incident) -> Awaitable[RecordMetadata]:
        """Hand the event to the producer; the result is awaited for its delivery."""
        return await self.incidents_out.send(
            key=incident.tenant.encode(), value=incident.to_bytes()
        )

    async def absorb(self, findings: list[Finding]) -> list[Incident]:
        """Fold a batch of findings into their tenants' incidents; return the events sent."""
        by_tenant: dict[str, list[Finding]] = defaultdict(list)
        for finding in findings:
            by_tenant[finding.tenant].append(finding)
        sent: list[Incident] = []
        async with self.lock:
            for tenant, batch in by_tenant.items():
                key = state_key(tenant)
                state = load_state(self.table.get(key))
                muted = [f for f in batch if not f.muted and state.mute_for(f) is not None]
                events = [e for f in batch for e in self.lifecycle.absorb(state, f)]
                await self._flag_muted(muted)
                await self._commit(key, state, events)
                sent.extend(events)
        return sent

    async def apply_feedback(self, records: list[IncidentFeedback]) -> list[Incident]:
        """Apply people's feedback to their tenants' incidents; return the events sent."""
        sent: list[Incident] = []
        async with self.lock:
            for record in records:
                key = state_key(record.tenant)
                state = load_state(self.table.get(key))
                events = self.lifecycle.apply_feedback(state, record)
                await self._commit(key, state, events)
                sent.extend(events)
        return sent

    async def _flag_muted(self, findings: list[Finding]) -> None:
        if self.findings_out is None:
            return
        for finding in findings:
            flagged = finding.model_copy(update={"muted": True})
            await self.findings_out.send(key=finding.tenant.encode(), value=flagged.to_bytes())

    async def tick(self, now: float) -> list[Incident]:
        """Resolve incidents gone quiet, in the tenants this worker owns."""
        sent: list[Incident] = []
        async with self.lock:
            for key in list(self._owned_keys()):
                state = load_state(self.table.get(key))
                mutes = len(state.mutes)
                events = self.lifecycle.tick(state, now)
                if events or len(state.mutes) != mutes:  # resolved, or a mute lapsed
                    await self._commit(key, state, events)
                    sent.extend(events)
        return sent

    def open_incidents(self) -> list[Incident]:
        """The open incidents of the tenants this worker owns (for Alertmanager's re-posts)."""
        return [
            inc.incident for key in self._owned_keys() for inc in self._state(key).open.values()
        ]

    def _state(self, key: bytes) -> TenantIncidents:
        committing = self.committing.get(key)
        return committing if committing is not None else load_state(self.table.get(key))

    async def repost_open(self) -> None:
        """Keep open incidents' alerts alive in Alertmanager (their `endsAt` moves on)."""
        if self.alertmanager is not None:
            await self.alertmanager.post(self.open_incidents())

    def _owned_keys(self) -> list[bytes]:
        return [
            k
            for k in list(self.table.keys())
            if isinstance(k, bytes) and k.endswith(b"#" + STATE_DETAIL.encode()) and self.owns(k)
        ]

    async def _commit(self, key: bytes, state: TenantIncidents, events: list[Incident]) -> None:
        # Delivered before the state that says they were sent is written (a crash in
        # between replays the findings and sends them again, same incident versions).
        self.committing[key] = state
        try:
            await asyncio.gather(*[await self.send(event) for event in events])
            self.table[key] = dump_state(state)
        finally:
            del self.committing[key]
