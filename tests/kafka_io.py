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


def delivered() -> asyncio.Future[None]:
    """What a fake topic's `send` returns: Faust's is awaited again for the delivery."""
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    done.set_result(None)
    return done


class HeldDeliveries:
    """A topic whose sends are delivered only when the test says so (`release`).

    Stands in for a Faust topic where delivery order matters: `send` and
    `send_soon` record the value and hand back its delivery, still pending."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.pending: list[asyncio.Future[None]] = []

    def send_soon(self, *, key: bytes, value: bytes) -> asyncio.Future[None]:
        self.sent.append(value)
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.pending.append(fut)
        return fut

    async def send(self, *, key: bytes, value: bytes) -> asyncio.Future[None]:
        return self.send_soon(key=key, value=value)

    async def wait_sent(self, count: int = 1) -> None:
        """Until `count` values were handed over (the stage runs in a task meanwhile)."""
        for _ in range(1000):
            if len(self.sent) >= count:
                return
            await asyncio.sleep(0)
        raise AssertionError(f"{len(self.sent)} of {count} values sent")

    def release(self) -> None:
        for fut in self.pending:
            if not fut.done():
                fut.set_result(None)


class ChangelogTable(dict[bytes, Any]):
    """A table that notes each write made while `held` still had deliveries pending
    (what a changelog would carry ahead of the outputs it vouches for)."""

    def __init__(self, held: HeldDeliveries, rows: dict[bytes, Any] | None = None) -> None:
        super().__init__(rows or {})
        self.held = held
        self.early_writes: list[bytes] = []

    def __setitem__(self, key: bytes, value: Any) -> None:
        if any(not fut.done() for fut in self.held.pending):
            self.early_writes.append(key)
        super().__setitem__(key, value)
