"""Sink agents: findings and LLM usage into ClickHouse, durably.

Each batch is flushed to ClickHouse before the agent asks for the next one,
so Faust commits a batch's offsets only after its rows are stored: a crash
re-delivers unstored rows, and ReplacingMergeTree keys (finding_id; usage's
full key) absorb the re-delivered ones, so none is lost and none counted twice.
"""

from __future__ import annotations

from typing import Any, TypeVar

from faust.types import EventT, StreamT

from loglytics.agents.deadletters import dead_letter
from loglytics.agents.runtime import runtime
from loglytics.app import app
from loglytics.schemas import DecodeError, Finding, Record, UsageRecord
from loglytics.topics import findings_topic, usage_topic

R = TypeVar("R", bound=Record)


async def _decode(model: type[R], event: EventT[Any], stage: str) -> R | None:
    value = event.message.value
    try:
        return model.from_bytes(value if isinstance(value, bytes) else b"")
    except DecodeError as exc:
        await dead_letter(stage, exc.reason, event)
        return None


@app.agent(findings_topic)
async def store_findings(stream: StreamT[bytes]) -> None:
    async for events in stream.take_events(1000, within=0.5):  # type: ignore[attr-defined]
        rt = await runtime.ready()
        findings = [f for e in events if (f := await _decode(Finding, e, "sink.findings"))]
        if findings and rt.sink is not None:
            await rt.sink.wait_capacity()
            rt.sink.add_findings(findings)
            await rt.sink.flush()


@app.agent(usage_topic)
async def store_usage(stream: StreamT[bytes]) -> None:
    async for events in stream.take_events(1000, within=0.5):  # type: ignore[attr-defined]
        rt = await runtime.ready()
        records = [u for e in events if (u := await _decode(UsageRecord, e, "sink.usage"))]
        if records and rt.sink is not None:
            await rt.sink.wait_capacity()
            for record in records:
                rt.sink.add_usage(record)
            await rt.sink.flush()
