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

import logging

from loglytics.follower import TopicFollower
from loglytics.kafka_clients import KafkaConnection
from loglytics.schemas import DecodeError, TenantRecord, hash_api_key
from loglytics.topics import TENANTS

log = logging.getLogger(__name__)


class TenantDirectory:
    """key hash -> enabled tenant, kept current by following the `tenants` topic."""

    def __init__(self, kafka: KafkaConnection, *, partitions: int = 4) -> None:
        self.kafka = kafka
        self.partitions = partitions
        self._by_hash: dict[str, TenantRecord] = {}
        self._records: dict[str, TenantRecord] = {}
        self._follower = TopicFollower(
            kafka,
            (TENANTS.name,),
            self._apply_record,
            name="tenant-directory",
            partitions=partitions,
        )

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

    def _apply_record(self, topic: str, key: bytes | None, value: bytes | None) -> None:
        self.apply(key, value)

    async def start(self) -> None:
        """Read the topic to its current end (so known keys work at once), then follow it."""
        await self._follower.start()
        log.info("tenant directory loaded: %d tenants", len(self._records))

    async def stop(self) -> None:
        await self._follower.stop()
