"""Sink agents: findings, incident events, incident feedback and LLM usage into ClickHouse.

Each batch is flushed to ClickHouse before the agent asks for the next one,
so Faust commits a batch's offsets only after its rows are stored: a crash
re-delivers unstored rows, and ReplacingMergeTree keys (finding_id; incident_id
by version; usage's full key) absorb the re-delivered ones, so none is lost and
none counted twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import faust
from faust.types import EventT, StreamT

from loglytics.deadletters import DeadLetterFn, decoded
from loglytics.runtime import Runtime
from loglytics.schemas import (
    Finding,
    Incident,
    IncidentFeedback,
    Record,
    UsageRecord,
)
from loglytics.storage.sink import ClickHouseSink, SinkError

R = TypeVar("R", bound=Record)

log = logging.getLogger(__name__)

BATCH_ROWS = 1000
BATCH_WITHIN = 0.5


def register(
    app: faust.App,
    runtime: Runtime,
    *,
    findings: faust.TopicT,
    usage: faust.TopicT,
    dead_letter: DeadLetterFn,
    incidents: faust.TopicT | None = None,
    feedback: faust.TopicT | None = None,
) -> None:
    """Declare one sink agent per stored topic on the app."""
    _sink_agent(app, runtime, findings, Finding, "sink.findings", _add_finding, dead_letter)
    _sink_agent(
        app, runtime, usage, UsageRecord, "sink.usage", ClickHouseSink.add_usage, dead_letter
    )
    if incidents is not None:
        add_incident = ClickHouseSink.add_incident
        _sink_agent(app, runtime, incidents, Incident, "sink.incidents", add_incident, dead_letter)
    if feedback is not None:
        add_feedback = ClickHouseSink.add_feedback
        _sink_agent(
            app, runtime, feedback, IncidentFeedback, "sink.feedback", add_feedback, dead_letter
        )


def _add_finding(sink: ClickHouseSink, finding: Finding) -> None:
    sink.add_findings([finding])


def _sink_agent(
    app: faust.App,
    runtime: Runtime,
    topic: faust.TopicT,
    model: type[R],
    stage: str,
    add: Callable[[ClickHouseSink, R], None],
    dead_letter: DeadLetterFn,
) -> None:
    async def store(stream: StreamT[bytes]) -> None:
        async for events in stream.take_events(BATCH_ROWS, within=BATCH_WITHIN):  # type: ignore[attr-defined]
            rt = await runtime.ready()
            if rt.sink is not None:
                await store_events(rt.sink, events, model, add, stage, dead_letter)

    app.agent(topic, name=f"loglytics.{stage}")(store)


async def store_events(
    sink: ClickHouseSink,
    events: Sequence[EventT[Any]],
    model: type[R],
    add: Callable[[ClickHouseSink, R], None],
    stage: str,
    dead_letter: DeadLetterFn,
) -> None:
    """Queue each event's record and flush; a record that cannot be stored is dead-lettered.

    Why one record at a time: a record that decodes but cannot become a row (a value
    its column cannot hold) must not take its batch down with it; an exception out
    of the agent would restart it and drop the batch it was holding.
    """
    added = False
    for event in events:
        if event.message.value is None:
            continue  # a tombstone on a compacted topic: nothing to store
        record = await decoded(event, model, stage, dead_letter)
        if record is None:
            continue
        await sink.wait_capacity()
        try:
            add(sink, record)
        except SinkError:
            raise
        except Exception as exc:  # any row this record makes is refused, the rest go on
            log.warning("%s: a record not storable: %s", stage, exc)
            await dead_letter(stage, f"not storable: {exc}"[:500], event)
            continue
        added = True
    if added:
        await sink.flush()
