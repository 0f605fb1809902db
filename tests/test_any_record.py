"""Integration: no record on any topic a worker reads stops one of its agents.

Why a mutation fuzzer: a record that decodes can still carry a value no later
step expected (a time no row holds, a count past a column's width, a text of
100,000 characters), and an exception out of a Faust agent restarts it and drops
what it held. For every topic the worker consumes, one valid record of the
topic's model has each field (and each field one level down) replaced in turn
by extreme values; all of them are produced to a running worker, which must
consume every one (its group's lag reaches zero), log no agent crash and stay
up. Records that no longer decode are dead-lettered by the stage that read them.
The tenant field is left alone: every record stays with this test's tenant. The
broker is the test's own: the garbage it writes must not reach other tests'
readers of the shared topics.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka_io import produce, read_all
from test_incidents import EXC, finding
from worker_proc import WorkerProcess

from loglytics.embedded import stack as embedded_stack
from loglytics.embedded.ports import free_port
from loglytics.embedded.stack import StackState
from loglytics.incidents.lifecycle import Lifecycle
from loglytics.incidents.state import TenantIncidents
from loglytics.kafka_admin import consumer_lag
from loglytics.kafka_clients import KafkaConnection
from loglytics.schemas import (
    DeadLetter,
    DecodeError,
    IncidentFeedback,
    LLMRequest,
    LogBatch,
    LogEvent,
    Mute,
    Record,
    TenantRecord,
    UsageRecord,
)
from loglytics.schemas.ledger import LedgerOp
from loglytics.schemas.windows import TemplateCount, WindowDigest

TENANT = "anyrecord"
NOW = time.time()
EXTREMES: tuple[Any, ...] = (
    None,
    0,
    -1,
    2**64 - 1,
    -(2**63),
    10**30,
    1e308,
    -1e308,
    0.5,
    "",
    "x" * 100_000,
    "\u0000\ud7ff\U0001f600 <*> %s {0}",
    [],
    {},
    [1, "a", None, {"k": []}],
    True,
)
KEPT = ("tenant", "schema_version")
GARBLED = b"\xff{ not json"


def seeds() -> dict[str, list[Record]]:
    """One valid record per model, on the topic it is read from."""
    found = finding(0, "npe", EXC, tenant=TENANT)
    (opened,) = Lifecycle().absorb(TenantIncidents(), found)
    mute = Mute(mute_id="m", tenant=TENANT, template_ids=["npe"], reason="expected", created_at=NOW)
    return {
        "logs.raw": [
            LogBatch(tenant=TENANT, source="api", lines=["2026-12-02 01:00:00 ERROR db failed"]),
            LogEvent(tenant=TENANT, source="api", message="boom", timestamp=NOW, level="ERROR"),
        ],
        "logs.windows": [
            WindowDigest(
                tenant=TENANT,
                source="api",
                window_start=NOW - 60,
                window_end=NOW - 50,
                line_count=5,
                level_counts={"ERROR": 5},
                templates=[TemplateCount(template_id="t", template="db <*> failed", count=5)],
                new_template_ids=["t"],
            )
        ],
        "findings": [found],
        "incidents": [opened],
        "incident-feedback": [
            IncidentFeedback(tenant=TENANT, action="ack", created_at=NOW, incident_id="i"),
            IncidentFeedback(tenant=TENANT, action="mute", created_at=NOW, mute=mute),
        ],
        "llm.requests": [
            LLMRequest(request_id="r", tenant=TENANT, api_key="k", task="chat", input={"q": "hi"})
        ],
        "usage": [
            UsageRecord(tenant=TENANT, tier="free", task="chat", provider="p", model="m", ts=NOW)
        ],
        "tenants": [TenantRecord(tenant=TENANT)],
        "quota.ops": [LedgerOp(kind="reserve", op_id="o", tenant=TENANT, tokens=10, lease_s=5)],
    }


def mutants(record: Record) -> Iterator[dict[str, Any]]:
    """The record's JSON with each field, and each field of a nested object, replaced."""
    base = record.to_json()
    for name, value in base.items():
        if name in KEPT:
            continue
        for extreme in EXTREMES:
            yield {**base, name: extreme}
        inner = value[0] if isinstance(value, list) and value else value
        if isinstance(inner, dict):
            for field_name in inner:
                for extreme in EXTREMES:
                    changed = {**inner, field_name: extreme}
                    yield {**base, name: [changed] if isinstance(value, list) else changed}


def encoded(body: dict[str, Any]) -> bytes:
    """JSON as any producer may write it (the standard library's: big ints, no checks)."""
    return json.dumps(body, allow_nan=False).encode("utf-8", "surrogatepass")


def decodes(model: type[Record], value: bytes) -> bool:
    try:
        model.from_bytes(value)
    except DecodeError:
        return False
    return True


def messages(rng: random.Random) -> dict[str, list[bytes]]:
    """Per topic: every mutant that still decodes, and a sample of those that do not."""
    out: dict[str, list[bytes]] = {}
    for topic, records in seeds().items():
        valid: list[bytes] = []
        invalid: list[bytes] = []
        for record in records:
            for body in mutants(record):
                value = encoded(body)
                (valid if decodes(type(record), value) else invalid).append(value)
        out[topic] = valid + rng.sample(invalid, min(len(invalid), 40)) + [GARBLED]
    return out


@pytest.fixture
def own_stack(tmp_path: Path) -> Iterator[StackState]:
    """A broker of this test's own (no model: every LLM call fails fast, rules only)."""
    dead_llm = f"http://127.0.0.1:{free_port()}"
    settings = embedded_stack.private_settings(tmp_path / "own", llamacpp_base_url=dead_llm)
    state = embedded_stack.up(settings, tied=True)
    try:
        yield state
    finally:
        embedded_stack.down(settings)


def test_no_record_on_any_topic_stops_an_agent(own_stack: StackState, tmp_path: Path) -> None:
    stack = own_stack
    batches = messages(random.Random(20261202))
    worker = WorkerProcess(
        stack,
        tmp_path,
        window_seconds=10,
        window_idle_close_seconds=2,
    )
    worker.start()
    try:
        key = TENANT.encode()
        for topic, values in batches.items():
            asyncio.run(produce(stack.kafka, topic, [(key, v, None) for v in values]))
        kafka = KafkaConnection(stack.kafka)
        deadline = time.monotonic() + 120
        while lag := asyncio.run(consumer_lag(kafka, worker.app_id, tuple(batches), 4)):
            assert time.monotonic() < deadline, f"{lag} records not consumed"
            assert worker.proc is not None and worker.proc.poll() is None, worker.tail()
            time.sleep(1.0)
        time.sleep(3.0)  # the idle close of the fuzzed sources' windows, and their sinks
        assert worker.proc is not None and worker.proc.poll() is None, worker.tail()
        assert not worker.crashes(), "\n".join(worker.crashes()[:5])
        letters = [DeadLetter.from_obj(d) for d in asyncio.run(read_all(stack.kafka, "deadletter"))]
        garbled = {d.topic for d in letters if d.original == GARBLED}
        assert garbled >= set(batches), f"not dead-lettered from {set(batches) - garbled}"
    finally:
        worker.stop()
