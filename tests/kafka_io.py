"""Small aiokafka helpers for integration tests: produce messages, read a topic to its end."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from loglytics.kafka_admin import ensure_topics, read_topic
from loglytics.kafka_clients import KafkaConnection

Message = tuple[bytes | None, bytes, list[tuple[str, bytes]] | None]


async def produce(
    bootstrap: str | KafkaConnection, topic: str, messages: Sequence[Message]
) -> None:
    """Produce to the broker (a plain address: the embedded stack's plaintext listener)."""
    kafka = _connection(bootstrap)
    await ensure_topics(kafka, 4)
    producer = kafka.producer(max_request_size=8 << 20)
    await producer.start()
    try:
        for key, value, headers in messages:
            await producer.send_and_wait(topic, value=value, key=key, headers=headers)
    finally:
        await producer.stop()


async def read_all(bootstrap: str | KafkaConnection, topic: str, idle_ms: int = 1500) -> list[Any]:
    """Every record of a topic from the beginning, decoded as JSON."""
    return [orjson.loads(v) for v in await read_topic(_connection(bootstrap), topic, idle_ms)]


def _connection(bootstrap: str | KafkaConnection) -> KafkaConnection:
    return bootstrap if isinstance(bootstrap, KafkaConnection) else KafkaConnection(bootstrap)


def wait_for(
    bootstrap: str | KafkaConnection,
    topic: str,
    done: Callable[[list[Any]], bool],
    timeout: float,
    what: str,
) -> list[Any]:
    deadline = time.monotonic() + timeout
    records: list[Any] = []
    while time.monotonic() < deadline:
        records = asyncio.run(read_all(bootstrap, topic, idle_ms=500))
        if done(records):
            return records
        time.sleep(1.0)
    raise AssertionError(f"timed out waiting for {what}; last saw {len(records)} records")
