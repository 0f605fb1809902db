"""The sink agents' step: a record that cannot be stored is dead-lettered, never fatal.

Why: an exception out of a Faust agent restarts it and drops the batch it was
holding, so one bad record would lose its neighbours (a mute whose `until` no
stored time can hold once took the first acknowledgement of a test with it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import orjson
from faust.types import EventT

from loglytics.schemas import IncidentFeedback, Mute
from loglytics.sinks.agent import store_events
from loglytics.storage.sink import ClickHouseSink

TENANT = "sinks"
NOW = 1_796_000_000.0


@dataclass
class Inserted:
    """Stands in for ClickHouse: keeps every insert's rows, by table."""

    rows: dict[str, list[Sequence[Any]]] = field(default_factory=dict)

    def insert(
        self,
        table: str,
        data: Sequence[Sequence[Any]],
        /,
        *,
        column_names: Sequence[str],
        settings: dict[str, Any],
    ) -> object:
        self.rows.setdefault(table, []).extend(data)
        return None


@dataclass
class Message:
    value: bytes
    topic: str = "incident-feedback"
    partition: int = 0
    offset: int = 0
    key: bytes | None = None


@dataclass
class Event:
    message: Message


@dataclass
class Letters:
    sent: list[tuple[str, str, bytes]] = field(default_factory=list)

    async def __call__(
        self, stage: str, reason: str, event: EventT[Any] | None, original: bytes | None = None
    ) -> None:
        assert event is not None
        self.sent.append((stage, reason, cast(bytes, event.message.value)))


def ack(n: int) -> bytes:
    return IncidentFeedback(
        tenant=TENANT, action="ack", created_at=NOW + n, incident_id=f"i{n}", by="oncall"
    ).to_bytes()


def far_mute() -> bytes:
    """A mute ending in year 785 million, as a client asking for 2.5e16 seconds once made."""
    mute = Mute(mute_id="m", tenant=TENANT, template_ids=["t"], reason="expected", created_at=NOW)
    body = orjson.loads(
        IncidentFeedback(tenant=TENANT, action="mute", created_at=NOW, mute=mute).to_bytes()
    )
    body["mute"]["until"] = 2.5e16
    return orjson.dumps(body)


def events(*values: bytes) -> list[EventT[Any]]:
    return [cast(EventT[Any], Event(Message(v, offset=i))) for i, v in enumerate(values)]


async def test_an_unstorable_time_is_dead_lettered_naming_it_and_the_rest_are_stored() -> None:
    inserted, letters = Inserted(), Letters()
    sink = ClickHouseSink(inserted)
    batch = events(ack(1), far_mute(), ack(2))
    await store_events(
        sink, batch, IncidentFeedback, ClickHouseSink.add_feedback, "sink.feedback", letters
    )
    stored = inserted.rows["incident_feedback"]
    assert len(stored) == 2 and sink.rows_pending == 0
    [(stage, reason, original)] = letters.sent
    assert stage == "sink.feedback" and "until" in reason and original == far_mute()


async def test_a_record_whose_row_fails_is_dead_lettered_and_its_neighbours_stored() -> None:
    """Whatever a row builder raises for one record stays with that record."""
    inserted, letters = Inserted(), Letters()
    sink = ClickHouseSink(inserted)

    def refuse_the_second(sink: ClickHouseSink, record: IncidentFeedback) -> None:
        if record.incident_id == "i2":
            raise OverflowError("date value out of range")
        sink.add_feedback(record)

    batch = events(ack(1), ack(2), ack(3), b"{not json")
    await store_events(sink, batch, IncidentFeedback, refuse_the_second, "sink.feedback", letters)
    assert len(inserted.rows["incident_feedback"]) == 2
    reasons = [reason for _, reason, _ in letters.sent]
    assert len(reasons) == 2
    assert reasons[0] == "not storable: date value out of range"
    assert "invalid JSON" in reasons[1]
