"""Co-partitioning: a tenant/source's messages and its table state share one partition.

Keys on `logs.raw` are `tenant/source`; table keys are `tenant/source#detail`.
Hashing only the part before `#` (with Kafka's own murmur2, as every Kafka
client does by default) puts a source's state on the same partition as its
messages, so each worker in the consumer group owns both, and Faust restores
exactly the table partitions of the source partitions it is assigned.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import faust
from aiokafka.partitioner import murmur2

KEY_SEPARATOR = b"#"


def partition_key(key: bytes) -> bytes:
    """The part of a key that decides its partition."""
    return key.split(KEY_SEPARATOR, 1)[0]


def tenant_partitioner(
    key: bytes | None, all_partitions: Sequence[int], available: Sequence[int]
) -> int:
    """Kafka's default partitioner, applied to the key's tenant/source prefix."""
    if key is None:
        return random.choice(list(available) or list(all_partitions))
    idx = (murmur2(partition_key(key)) & 0x7FFFFFFF) % len(all_partitions)
    return int(all_partitions[idx])


def source_key(tenant: str, source: str) -> str:
    return f"{tenant}/{source}"


def state_key(tenant: str, source: str, detail: str) -> str:
    return f"{tenant}/{source}#{detail}"


def partition_for(key: bytes | str, partitions: int) -> int:
    raw = key.encode() if isinstance(key, str) else key
    return int(murmur2(partition_key(raw)) & 0x7FFFFFFF) % partitions


class _CoPartitioned:
    """Mixin: a table whose changelog partition comes from the key's tenant/source prefix.

    Faust would otherwise take the partition of the event being processed,
    which does not exist inside batched (`take_events`) processing or timers,
    or ask the producer's metadata, which may not know the changelog yet.
    """

    partitions: int | None
    app: faust.App

    def partition_for_key(self, key: Any) -> int | None:
        if not isinstance(key, bytes | str):
            return None
        return partition_for(key, self.partitions or self.app.conf.topic_partitions)


class CoPartitionedTable(_CoPartitioned, faust.Table):  # type: ignore[misc, type-arg]
    """`faust.Table` with co-partitioned changelog writes."""


class CoPartitionedGlobalTable(_CoPartitioned, faust.GlobalTable):  # type: ignore[misc]
    """`faust.GlobalTable` with co-partitioned changelog writes (any worker may write)."""
