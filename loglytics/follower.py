"""Read topics to their end, then follow them: how gateways and workers keep views current.

Why one follower: the gateway's tenant directory and incident desk, and every
worker's tenant view, rebuild a view from compacted or retained topics at every
start (so replicas share nothing), must not answer before the view holds what
the topics held when asked (a known key must work at once), and must keep
following through broker hiccups. Each record is handed to `apply`; the view is
the caller's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from loglytics.kafka_admin import ensure_topics
from loglytics.kafka_clients import KafkaConnection

log = logging.getLogger(__name__)

LOAD_TIMEOUT = 60.0

Apply = Callable[[str, bytes | None, bytes | None], None]
"""One record: its topic, key and value (None for a tombstone)."""


async def follow_records(
    consumer: AIOKafkaConsumer, apply: Apply, *, what: str, retry_delay: float = 0.5
) -> None:
    """Hand every record `consumer` reads to `apply`, until cancelled.

    A failed fetch is logged and retried: a broker hiccup must not freeze a view
    for good, nor strand the callers waiting on replies read this way.
    """
    while True:
        try:
            batch = await consumer.getmany(timeout_ms=200)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("reading %s failed; retrying", what)
            await asyncio.sleep(retry_delay)
            continue
        hand_out(batch, apply)


def hand_out(
    batch: Mapping[TopicPartition, Sequence[ConsumerRecord[Any, Any]]], apply: Apply
) -> None:
    """Every record of one fetch to `apply`, in the fetch's order."""
    for tp, records in batch.items():
        for record in records:
            apply(tp.topic, record.key, record.value)


class TopicFollower:
    """Hands every record of `topics`, from the beginning, to `apply`, and keeps doing so."""

    def __init__(
        self,
        kafka: KafkaConnection,
        topics: tuple[str, ...],
        apply: Apply,
        *,
        name: str,
        partitions: int = 4,
    ) -> None:
        self.kafka = kafka
        self.topics = topics
        self.apply = apply
        self.name = name
        self.partitions = partitions
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Read the topics to their current end (within LOAD_TIMEOUT), then follow them."""
        await ensure_topics(self.kafka, self.partitions)
        consumer = self.kafka.consumer(group_id=None, enable_auto_commit=False)
        await consumer.start()
        try:
            await consumer.topics()
            tps = [
                TopicPartition(topic, p)
                for topic in self.topics
                for p in sorted(consumer.partitions_for_topic(topic) or range(self.partitions))
            ]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            ends = await consumer.end_offsets(tps)
            async with asyncio.timeout(LOAD_TIMEOUT):
                while any([await consumer.position(tp) < ends[tp] for tp in tps]):
                    hand_out(await consumer.getmany(timeout_ms=500), self.apply)
        except BaseException:
            await consumer.stop()
            raise
        self._consumer = consumer
        self._task = asyncio.create_task(self._follow(consumer), name=self.name)

    async def _follow(self, consumer: AIOKafkaConsumer) -> None:
        await follow_records(consumer, self.apply, what=f"{self.name}: {', '.join(self.topics)}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None
