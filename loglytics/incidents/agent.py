"""The incidents agents: findings in, incident events out; and their delivery.

`loglytics.incidents` folds each batch of findings into its tenants' incidents
(state in the `incidents-state` table, co-partitioned with `findings` by
tenant) and sends the events to `incidents`. A timer resolves incidents gone
quiet and keeps open ones alive in Alertmanager. `loglytics.incidents.deliver`
reads the events back and delivers them (Alertmanager, webhook): a separate
agent, so neither detection nor the lifecycle ever waits on a receiver, and an
event's offset is committed only once it was delivered or dead-lettered.
`loglytics.incidents.feedback` applies people's feedback (the compacted
`incident-feedback` topic, co-partitioned by tenant) to the same state.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import faust
import httpx
from faust.types import TP, StreamT

from loglytics.deadletters import DeadLetterFn, decoded
from loglytics.incidents.delivery import AlertmanagerSink, WebhookSink
from loglytics.incidents.lifecycle import Lifecycle
from loglytics.incidents.stage import IncidentStage
from loglytics.partitioning import partition_for
from loglytics.runtime import Runtime
from loglytics.schemas import Finding, Incident, IncidentFeedback

STAGE = "incidents"
DELIVERY_STAGE = "incidents.delivery"
BATCH_FINDINGS = 500
BATCH_WITHIN = 0.25
HTTP_TIMEOUT_S = 10.0


def register(
    app: faust.App,
    runtime: Runtime,
    *,
    findings: faust.TopicT,
    incidents: faust.TopicT,
    dead_letter: DeadLetterFn,
    feedback: faust.TopicT | None = None,
) -> IncidentStage:
    """Declare the incidents table, agents and timers on the app."""
    settings = runtime.settings
    client = httpx.AsyncClient(timeout=HTTP_TIMEOUT_S)
    alertmanager = (
        AlertmanagerSink(settings.alertmanager_url, client) if settings.alertmanager_url else None
    )
    webhook = (
        WebhookSink(settings.webhook_url, client, secret=settings.webhook_secret)
        if settings.webhook_url
        else None
    )
    stage = IncidentStage(
        Lifecycle(resolve_windows=settings.incident_resolve_windows),
        # tenant#incidents -> the tenant's TenantIncidents (incidents.state, JSON bytes)
        table=app.Table(
            "incidents-state",
            default=None,
            key_type=bytes,
            value_type=bytes,
            partitions=app.conf.topic_partitions,
        ),
        incidents_out=incidents,
        owns=_owner(app, findings),
        alertmanager=alertmanager,
        findings_out=findings,
    )

    @app.agent(findings, name="loglytics.incidents")
    async def group(stream: StreamT[bytes]) -> None:
        """Findings in batches; a bad finding is dead-lettered, never fatal."""
        batches = stream.take_events(BATCH_FINDINGS, within=BATCH_WITHIN)  # type: ignore[attr-defined]
        async for events in batches:
            found = [f for e in events if (f := await decoded(e, Finding, STAGE, dead_letter))]
            if found:
                await stage.absorb(found)

    if feedback is not None:
        _feedback_agent(app, feedback, stage, dead_letter)

    tick_every = max(0.5, min(5.0, settings.window_seconds / 4))

    @app.timer(interval=tick_every, name="loglytics.incidents.resolve_quiet")  # type: ignore[untyped-decorator]
    async def resolve_quiet() -> None:
        await stage.tick(time.time())

    if alertmanager is not None:

        @app.timer(interval=alertmanager.repost_every_s, name="loglytics.incidents.repost")  # type: ignore[untyped-decorator]
        async def repost() -> None:
            await stage.repost_open()

    if alertmanager is not None or webhook is not None:

        @app.agent(incidents, name="loglytics.incidents.deliver")
        async def deliver(stream: StreamT[bytes]) -> None:
            async for event in stream.events():
                incident = await decoded(event, Incident, DELIVERY_STAGE, dead_letter)
                if incident is None:
                    continue
                if alertmanager is not None:
                    await alertmanager.post([incident])
                if webhook is not None and not await webhook.deliver(incident):
                    await dead_letter(DELIVERY_STAGE, "webhook retries spent", event)

    return stage


def _feedback_agent(
    app: faust.App, feedback: faust.TopicT, stage: IncidentStage, dead_letter: DeadLetterFn
) -> None:
    """People's feedback (the compacted `incident-feedback` topic) applied to the state."""

    @app.agent(feedback, name="loglytics.incidents.feedback")
    async def take_feedback(stream: StreamT[bytes]) -> None:
        async for event in stream.events():
            if not event.message.value:
                continue  # a tombstone: nothing to apply
            record = await decoded(event, IncidentFeedback, STAGE, dead_letter)
            if record is not None:
                await stage.apply_feedback([record])


def _owner(app: faust.App, findings: faust.TopicT) -> Callable[[bytes], bool]:
    """Whether this worker actively owns a table key's partition (not a standby's copy)."""
    name = findings.get_topic_name()

    def owns(key: bytes) -> bool:
        partition = partition_for(key, app.conf.topic_partitions)
        return TP(name, partition) in app.assignor.assigned_actives()

    return owns
