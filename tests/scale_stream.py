"""The stream the scale-out tests run (no tests here): log windows on every partition,
each with a finding, and waves of slow chat requests keyed by request id.

Every source of a log stream hashes to a different partition of `logs.raw`, so every
worker ingests some; every window holds twenty quiet lines and a burst of five errors,
so each window has a finding. Requests are keyed by request id, as any Kafka client
may key them, so they reach every worker whatever partition holds their tenant.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from kafka_io import Message, produce
from scale_cluster import PARTITIONS, SLOW, Asked, ask_on
from test_detection_pipeline import window_lines
from test_requests_support import request, uid

from loglytics.clients import RequestClient
from loglytics.kafka_clients import KafkaConnection
from loglytics.partitioning import partition_for
from loglytics.schemas import LLMRequest, LLMResponse, LogBatch

WINDOW = 10.0
REPLY_TIMEOUT = 90.0

Disruption = Callable[[], Callable[[], None] | None]
"""Runs in the thread that spawned the workers; what it returns runs in a thread of its own."""


def sources_on_every_partition(tenant: str, prefix: str = "s") -> list[str]:
    """One source per partition of `logs.raw`."""
    by_partition: dict[int, str] = {}
    for i in range(200):
        source = f"{prefix}{i}"
        by_partition.setdefault(partition_for(f"{tenant}/{source}", PARTITIONS), source)
    assert len(by_partition) == PARTITIONS
    return [by_partition[p] for p in sorted(by_partition)]


@dataclass
class LogStream:
    tenant: str
    messages: list[Message]
    expected: Counter[tuple[str, float]]
    """Lines per (source, window start)."""

    @property
    def lines(self) -> int:
        return sum(self.expected.values())


def log_stream(tenant: str, windows: int, prefix: str = "s") -> LogStream:
    """`windows` windows per source in event-time order, one message per source and window
    (sources named `prefix` and a number: other names, other patterns to judge)."""
    t0 = (int(time.time() - 7200) // 60) * 60.0
    sources = sources_on_every_partition(tenant, prefix)
    messages: list[Message] = []
    expected: Counter[tuple[str, float]] = Counter()
    for w in range(windows):
        start = t0 + w * WINDOW
        for source in sources:
            lines = window_lines(start)
            batch = LogBatch(tenant=tenant, source=source, lines=lines)
            messages.append((f"{tenant}/{source}".encode(), batch.to_bytes(), None))
            expected[(source, math.floor(start / WINDOW) * WINDOW)] += len(lines)
    return LogStream(tenant, messages, expected)


def slow_chat(tenant: str, key: str) -> LLMRequest:
    return request(tenant, key, "chat", input={"message": f"{SLOW} {uid()}"})


@dataclass
class Traffic:
    asked: Asked
    sent: list[str]


async def run_traffic(
    kafka: KafkaConnection,
    tenant: str,
    key: str,
    logs: LogStream,
    disrupt: Disruption,
    *,
    per_wave: int,
    disrupt_after_waves: int,
    waves_after: int = 4,
) -> Traffic:
    """Slow chat requests and two log messages a wave, waves half a second apart, until
    the logs are sent and `waves_after` waves followed the end of the disruption, which
    starts once `disrupt_after_waves` waves are in flight."""
    pending: list[asyncio.Task[dict[str, list[LLMResponse]]]] = []
    sent: list[str] = []
    disruption: asyncio.Future[None] | None = None
    after = 0
    async with RequestClient(kafka) as client:
        for wave in itertools.count():
            batch: list[tuple[LLMRequest, int | None]] = [
                (slow_chat(tenant, key), None) for _ in range(per_wave)
            ]
            sent += [r.request_id for r, _ in batch]
            pending.append(asyncio.create_task(ask_on(client, batch, REPLY_TIMEOUT)))
            await produce(kafka, "logs.raw", logs.messages[wave * 2 : wave * 2 + 2])
            if wave == disrupt_after_waves:
                then = disrupt()
                disruption = asyncio.ensure_future(asyncio.to_thread(then or (lambda: None)))
            if disruption is not None and disruption.done():
                after += 1
            if after > waves_after and wave * 2 + 2 >= len(logs.messages):
                break
            await asyncio.sleep(0.5)
        assert disruption is not None
        await disruption
        finals: dict[str, list[LLMResponse]] = {}
        for done in await asyncio.gather(*pending):
            finals.update(done)
        unanswered = [rid for rid, f in finals.items() if not f]
        return Traffic(Asked(finals, unanswered, client.duplicates), sent)
