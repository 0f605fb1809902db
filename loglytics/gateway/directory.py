"""Which tenant an API key belongs to: the compacted `tenants` topic, indexed by key hash.

Why the gateway reads the topic: a bearer key alone must identify its tenant,
and the request must still be keyed by tenant on `llm.requests` (so one
worker admits all of a tenant's requests and its rate window stays exact).
The topic is the source of truth the workers' tenant tables follow too; the
gateway keeps only this derived index, rebuilt from the topic at every start,
so replicas share nothing. A lookup is one SHA-256 and one dict probe, the
same work for a wrong key whichever tenants exist.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiokafka import AIOKafkaConsumer, TopicPartition

from loglytics.kafka_admin import ensure_topics
from loglytics.kafka_clients import KafkaConnection
from loglytics.schemas import DecodeError, TenantRecord, hash_api_key
from loglytics.topics import TENANTS

log = logging.getLogger(__name__)

LOAD_TIMEOUT = 60.0


class TenantDirectory:
    """key hash -> enabled tenant, kept current by following the `tenants` topic."""

    def __init__(self, kafka: KafkaConnection, *, partitions: int = 4) -> None:
        self.kafka = kafka
        self.partitions = partitions
        self._by_hash: dict[str, TenantRecord] = {}
        self._records: dict[str, TenantRecord] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._follower: asyncio.Task[None] | None = None

    def lookup(self, api_key: str) -> TenantRecord | None:
        return self._by_hash.get(hash_api_key(api_key))

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        """One record of the topic: a tenant's new state, or a tombstone removing it."""
        name = key.decode(errors="replace") if key else ""
        record: TenantRecord | None = None
        if value is not None:
            try:
                record = TenantRecord.from_bytes(value)
            except DecodeError:
                return
            name = record.tenant
        old = self._records.pop(name, None)
        for digest in old.api_key_hashes if old else ():
            self._by_hash.pop(digest, None)
        if record is None:
            return
        self._records[name] = record
        if record.enabled:
            self._by_hash.update(dict.fromkeys(record.api_key_hashes, record))

    async def start(self) -> None:
        """Read the topic to its current end (so known keys work at once), then follow it."""
        await ensure_topics(self.kafka, self.partitions)
        consumer = self.kafka.consumer(group_id=None, enable_auto_commit=False)
        await consumer.start()
        try:
            await consumer.topics()
            parts = consumer.partitions_for_topic(TENANTS.name) or set(range(self.partitions))
            tps = [TopicPartition(TENANTS.name, p) for p in sorted(parts)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            ends = await consumer.end_offsets(tps)
            async with asyncio.timeout(LOAD_TIMEOUT):
                while any([await consumer.position(tp) < ends[tp] for tp in tps]):
                    await self._read(consumer, 500)
        except BaseException:
            await consumer.stop()
            raise
        self._consumer = consumer
        self._follower = asyncio.create_task(self._follow(consumer), name="tenant-directory")
        log.info("tenant directory loaded: %d tenants", len(self._records))

    async def _read(self, consumer: AIOKafkaConsumer, timeout_ms: int) -> None:
        batch = await consumer.getmany(timeout_ms=timeout_ms)
        for records in batch.values():
            for record in records:
                self.apply(record.key, record.value)

    async def _follow(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            try:
                await self._read(consumer, 200)
            except asyncio.CancelledError:
                raise
            except Exception:  # a broker hiccup must not freeze the directory for good
                log.exception("reading the tenants topic failed; retrying")
                await asyncio.sleep(0.5)

    async def stop(self) -> None:
        if self._follower is not None:
            self._follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._follower
            self._follower = None
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None
