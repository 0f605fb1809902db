"""What tenants ship: single events, batches, and (not modelled) plain-text lines."""

from __future__ import annotations

from pydantic import Field

from loglytics.schemas.base import Record

Identifier = str  # tenant and source ids: short, printable, no slash (used in keys)
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"


class LogEvent(Record):
    """One log event, already structured by the shipper (or parsed by ingest)."""

    tenant: str = Field(pattern=ID_PATTERN)
    source: str = Field(pattern=ID_PATTERN)
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

    tenant: str = Field(pattern=ID_PATTERN)
    source: str = Field(pattern=ID_PATTERN)
    format: str | None = None
    lines: list[str] = Field(default_factory=list)
    events: list[BatchEvent] = Field(default_factory=list)
