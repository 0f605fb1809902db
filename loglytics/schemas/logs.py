"""What tenants ship: single events, batches, and (not modelled) plain-text lines."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from loglytics.schemas.base import Record

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
Identifier = Annotated[str, Field(pattern=ID_PATTERN)]
"""A tenant or source id: short, printable, no slash (it is part of keys and rows)."""


class LogEvent(Record):
    """One log event, already structured by the shipper (or parsed by ingest)."""

    tenant: Identifier
    source: Identifier
    message: str
    timestamp: float | None = None
    level: str | None = None
    component: str | None = None
    attributes: dict[str, str] = Field(default_factory=dict)


class BatchEvent(Record):
    """An event inside a LogBatch: tenant and source are the batch's."""

    message: str
    timestamp: float | None = None
    level: str | None = None
    component: str | None = None


class LogBatch(Record):
    """Many events of one tenant/source in one Kafka message.

    Why batches: the broker and the worker pay per message, so a shipper that
    packs hundreds of lines per message moves the pipeline's cost from the line
    rate to the message rate. `lines` are raw text lines (parsed by ingest with
    format detection, or with `format` when given); `events` are pre-structured.
    """

    tenant: Identifier
    source: Identifier
    format: str | None = None
    lines: list[str] = Field(default_factory=list)
    events: list[BatchEvent] = Field(default_factory=list)
