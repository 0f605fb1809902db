"""`loglytics tenants delete`: keys refused at once, state and rows gone, other tenants kept."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

from kafka_io import produce, wait_for

from loglytics.clients import RequestClient, new_request_id
from loglytics.commands.tenants import add, delete, read_tenants
from loglytics.embedded.ports import free_port
from loglytics.embedded.stack import StackState
from loglytics.embedded.worker import WorkerProcess
from loglytics.kafka_admin import consumer_lag
from loglytics.kafka_clients import KafkaConnection
from loglytics.schemas import LLMRequest, LLMResponse, LogBatch
from loglytics.storage.client import open_client
from loglytics.storage.erase import tenant_tables
from loglytics.tenants.forget import drop_state, owned_by

WINDOW = 10.0


def _stamp(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(seconds))


def _lines(start: float) -> list[str]:
    ok = [f"{_stamp(start + i)},000 INFO [main] com.shop.Api: served request {i}" for i in range(8)]
    bad = [f"{_stamp(start + 8)},000 ERROR [db] com.shop.Db: Connection to db-1 refused"] * 3
    return ok + bad


def _batches(tenant: str, t0: float) -> list[tuple[bytes, bytes, None]]:
    return [
        (
            f"{tenant}/api".encode(),
            LogBatch(tenant=tenant, source="api", lines=_lines(t0 + w * WINDOW)).to_bytes(),
            None,
        )
        for w in range(4)
    ]


async def _refused(kafka: KafkaConnection, tenant: str, key: str) -> bool:
    request = LLMRequest(request_id=new_request_id(), tenant=tenant, api_key=key, task="health")
    async with RequestClient(kafka) as client:
        reply = await client.call(request, 60)
    assert isinstance(reply, LLMResponse)
    return reply.error is not None and reply.error.error == "invalid_credentials"


def _settled(kafka: KafkaConnection, worker: WorkerProcess, topics: tuple[str, ...]) -> None:
    deadline = time.monotonic() + 60
    while asyncio.run(consumer_lag(kafka, worker.app_id, topics, 4)):
        assert time.monotonic() < deadline, f"{topics} not consumed\n{worker.tail()}"
        time.sleep(0.5)


def _counts(clickhouse: Path, tenant: str) -> dict[str, int]:
    client = open_client(f"chdb://{clickhouse}")
    try:
        return {
            table: int(
                client.query(
                    f"SELECT count() FROM `{table}` WHERE tenant = {{t:String}}",
                    parameters={"t": tenant},
                ).result_rows[0][0]
            )
            for table in tenant_tables()
        }
    finally:
        client.close()


def test_a_deleted_tenant_leaves_nothing_queryable(stack: StackState, tmp_path: Path) -> None:
    kafka = KafkaConnection(stack.kafka)
    gone, kept = f"gone-{uuid.uuid4().hex[:6]}", f"kept-{uuid.uuid4().hex[:6]}"
    gone_key = asyncio.run(add(kafka, 4, gone, "free"))
    kept_key = asyncio.run(add(kafka, 4, kept, "pro"))
    worker = WorkerProcess(
        stack,
        tmp_path,
        window_seconds=WINDOW,
        allowed_lateness_seconds=0,
        window_idle_close_seconds=2,
        llamacpp_base_url=f"http://127.0.0.1:{free_port()}",  # rules only: no LLM needed
    )
    t0 = (int(time.time() - 7200) // 60) * 60.0
    worker.start(timeout=90)
    try:
        asyncio.run(produce(kafka, "logs.raw", _batches(gone, t0) + _batches(kept, t0)))
        wait_for(
            kafka,
            "findings",
            lambda recs: {gone, kept} <= {r["tenant"] for r in recs},
            90,
            "findings of both tenants",
        )
        _settled(kafka, worker, ("logs.raw", "logs.windows", "findings", "tenants"))
        time.sleep(3)  # the sink writes every second
        assert not asyncio.run(_refused(kafka, gone, gone_key))

        assert asyncio.run(delete(kafka, 4, gone))
        _settled(kafka, worker, ("tenants",))  # the worker has read the disabled record
        assert asyncio.run(_refused(kafka, gone, gone_key))
        assert not asyncio.run(_refused(kafka, kept, kept_key))
    finally:
        worker.stop()
    assert gone not in asyncio.run(read_tenants(kafka))
    assert kept in asyncio.run(read_tenants(kafka))
    remaining = _counts(tmp_path / "clickhouse", gone)
    assert remaining == dict.fromkeys(tenant_tables(), 0), remaining
    others = _counts(tmp_path / "clickhouse", kept)
    for table in ("tenants", "windows", "window_stats", "templates", "findings"):
        assert others[table] > 0, (table, others)


def test_state_keys_of_the_tenant_and_only_its_own_are_dropped() -> None:
    tables: list[dict[Any, Any]] = [
        {b"acme": 1, b"acme2": 2, b"acme-eu": 3},
        {b"acme/api": 1, b"acme/api#t1": 2, b"acme2/api": 3},
        {b"acme#j1": 1, b"acme#incidents": 2, b"acmex#j1": 3, "acme/str": 4},
    ]
    assert drop_state(tables, "acme") == 6
    assert tables == [{b"acme2": 2, b"acme-eu": 3}, {b"acme2/api": 3}, {b"acmex#j1": 3}]
    assert not owned_by(None, "acme")
