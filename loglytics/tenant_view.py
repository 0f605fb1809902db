"""Every tenant, on every worker: the whole compacted `tenants` topic, followed.

Why not a Faust table: a worker's agents consume only their partitions, and a
GlobalTable fed by the owner of a tenant's partition did not reach the other
workers while they ran (measured with three workers: a tenant added at run
time was refused on the partitions its owner did not hold). Requests for a
tenant may arrive on any partition and detection runs on every worker, so
each worker reads all partitions of `tenants` itself, from the beginning,
with its own consumer (no group), as the gateway's directory does.
"""

from __future__ import annotations

import logging

from loglytics.follower import TopicFollower
from loglytics.kafka_clients import KafkaConnection
from loglytics.schemas import DecodeError, TenantRecord
from loglytics.topics import TENANTS

log = logging.getLogger(__name__)


class TenantView:
    """tenant -> its latest `TenantRecord`; a tombstone removes it."""

    def __init__(self, kafka: KafkaConnection, *, partitions: int) -> None:
        self._records: dict[str, TenantRecord] = {}
        self._follower = TopicFollower(
            kafka, (TENANTS.name,), self._apply, name="tenant-view", partitions=partitions
        )

    def get(self, tenant: str) -> TenantRecord | None:
        return self._records.get(tenant)

    def __len__(self) -> int:
        return len(self._records)

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        """One record of the topic (malformed ones are the tenants stage's dead letters)."""
        if value is None:
            if key:
                self._records.pop(key.decode(errors="replace"), None)
            return
        try:
            record = TenantRecord.from_bytes(value)
        except DecodeError:
            return
        if key is not None and key != record.tenant.encode():
            return
        self._records[record.tenant] = record

    def _apply(self, topic: str, key: bytes | None, value: bytes | None) -> None:
        self.apply(key, value)

    async def start(self) -> None:
        """Read the topic to its current end (known tenants work at once), then follow it."""
        await self._follower.start()
        log.info("tenant view loaded: %d tenants", len(self._records))

    async def stop(self) -> None:
        await self._follower.stop()
