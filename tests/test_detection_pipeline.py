"""Integration: findings survive a worker crash, reach the topic and ClickHouse exactly once."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from kafka_io import produce, wait_for

from loglytics.embedded.ports import free_port
from loglytics.embedded.stack import StackState
from loglytics.embedded.worker import WorkerProcess
from loglytics.kafka_admin import consumer_lag
from loglytics.kafka_clients import KafkaConnection
from loglytics.schemas import LogBatch
from loglytics.storage.client import open_client

TENANT = "crashy"
WINDOWS = 30
WINDOW = 10.0


def window_lines(start: float) -> list[str]:
    """Twenty quiet lines and a burst of five errors: a finding in every window."""
    lines = []
    for i in range(20):
        ts = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(start + i * 0.4))
        lines.append(f"{ts},000 INFO [main] com.shop.Api: served request {i} for user{i % 3}")
    for i in range(5):
        ts = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(start + 8 + i * 0.2))
        lines.append(f"{ts},000 ERROR [pool] com.shop.Db: Connection to db-1 refused (attempt {i})")
    return lines


def test_findings_survive_a_crash_and_are_stored_once(stack: StackState, tmp_path: Path) -> None:
    t0 = (int(time.time() - 7200) // 60) * 60.0
    messages = [
        (
            f"{TENANT}/db".encode(),
            LogBatch(tenant=TENANT, source="db", lines=window_lines(t0 + w * WINDOW)).to_bytes(),
            None,
        )
        for w in range(WINDOWS)
    ]
    # Every provider down: detection must not depend on the LLM (rules only, fast).
    worker = WorkerProcess(
        stack,
        tmp_path,
        window_seconds=WINDOW,
        allowed_lateness_seconds=0,
        window_idle_close_seconds=2,
        llamacpp_base_url=f"http://127.0.0.1:{free_port()}",
    )
    worker.start()
    try:
        asyncio.run(produce(stack.kafka, "logs.raw", messages[:15]))
        wait_for(
            stack.kafka,
            "findings",
            lambda recs: sum(r["tenant"] == TENANT for r in recs) >= 3,
            90,
            "first findings",
        )
        asyncio.run(produce(stack.kafka, "logs.raw", messages[15:]))
        worker.kill()  # findings in flight: some sent, some not, offsets not committed
        worker.start()
        records = wait_for(
            stack.kafka,
            "findings",
            lambda recs: len({r["finding_id"] for r in recs if r["tenant"] == TENANT}) >= WINDOWS,
            120,
            f"{WINDOWS} distinct findings",
        )
        deadline = time.monotonic() + 60
        topics = ("logs.raw", "logs.windows", "findings")
        while asyncio.run(
            consumer_lag(KafkaConnection(stack.kafka), worker.app_id, topics, 4)
        ) and (time.monotonic() < deadline):
            time.sleep(1)
    finally:
        worker.stop()  # releases the embedded ClickHouse directory
    on_topic = {r["finding_id"] for r in records if r["tenant"] == TENANT}
    assert len(on_topic) == WINDOWS
    assert all(r["model_used"] == "rules" for r in records if r["tenant"] == TENANT)
    client = open_client(f"chdb://{tmp_path / 'clickhouse'}")
    try:
        rows = client.query(
            "SELECT finding_id, count() FROM findings FINAL WHERE tenant = {t:String} "
            "GROUP BY finding_id",
            parameters={"t": TENANT},
        ).result_rows
    finally:
        client.close()
    stored = {fid: n for fid, n in rows}
    assert set(stored) == on_topic
    assert all(n == 1 for n in stored.values())
