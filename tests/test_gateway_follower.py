"""The gateway's `TopicFollower` on a real broker (Tansu alone): start returns only once
every record the topics held is applied, later records keep arriving, stop ends both.

Why on a broker: the guarantee is about offsets (read to the end offsets taken at
start, on every partition of every topic), which a stand-in consumer would only echo.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from loglytics.embedded import stack as embedded_stack
from loglytics.embedded.processes import stop_pid
from loglytics.follower import TopicFollower
from loglytics.kafka_admin import ensure_topics
from loglytics.kafka_clients import KafkaConnection
from loglytics.topics import FEEDBACK, INCIDENTS

PARTITIONS = 4


@pytest.fixture(scope="module")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaConnection]:
    settings = embedded_stack.private_settings(tmp_path_factory.mktemp("follower"))
    bootstrap, pid = embedded_stack.start_kafka(settings, tied=True)
    try:
        yield KafkaConnection(bootstrap)
    finally:
        stop_pid(pid)


async def _produce(kafka: KafkaConnection, records: list[tuple[str, int, bytes]]) -> None:
    producer = kafka.producer()
    await producer.start()
    try:
        for topic, partition, value in records:
            await producer.send_and_wait(topic, value=value, key=value, partition=partition)
    finally:
        await producer.stop()


async def test_start_applies_everything_already_there_then_follows(kafka: KafkaConnection) -> None:
    await ensure_topics(kafka, PARTITIONS)
    topics = (INCIDENTS.name, FEEDBACK.name)
    before = [
        (t, p, f"{t}-{p}-{i}".encode()) for t in topics for p in range(PARTITIONS) for i in (0, 1)
    ]
    await _produce(kafka, before)
    seen: list[tuple[str, bytes | None, bytes | None]] = []
    follower = TopicFollower(
        kafka, topics, lambda t, k, v: seen.append((t, k, v)), name="test", partitions=PARTITIONS
    )
    await follower.start()
    try:
        assert sorted(seen) == sorted((t, v, v) for t, _, v in before)
        after = [(INCIDENTS.name, 3, b"later-a"), (FEEDBACK.name, 0, b"later-b")]
        await _produce(kafka, after)
        async with asyncio.timeout(20):
            while len(seen) < len(before) + len(after):
                await asyncio.sleep(0.05)
        assert sorted(seen[len(before) :]) == sorted((t, v, v) for t, _, v in after)
    finally:
        await follower.stop()
    assert follower._task is None and follower._consumer is None
    await follower.stop()  # a second stop is harmless
