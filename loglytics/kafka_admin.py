"""Topic creation for clients that may run before the worker (send, ask, tenants, demo).

The worker declares the same topics through Faust; creating them here first,
with the same partition count, keeps a shipper's first batch from auto-creating
a topic with the broker's default layout.
"""

from __future__ import annotations

from aiokafka import TopicPartition
from aiokafka.admin import NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from loglytics.kafka_clients import KafkaConnection
from loglytics.topics import ALL_TOPICS


async def ensure_topics(kafka: KafkaConnection, partitions: int) -> None:
    admin = kafka.admin()
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(
                name=spec.name,
                num_partitions=partitions,
                replication_factor=1,
                topic_configs={"cleanup.policy": "compact"} if spec.compacted else {},
            )
            for spec in ALL_TOPICS
            if spec.name not in existing
        ]
        if missing:
            try:
                await admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass
    finally:
        await admin.close()


async def read_topic(kafka: KafkaConnection, topic: str, idle_ms: int = 700) -> list[bytes]:
    """Every value of a topic from the beginning, read at least to the end offsets it had
    when asked (an idle poll alone can end early on a busy machine), then until idle."""
    consumer = kafka.consumer(enable_auto_commit=False)
    await consumer.start()
    out: list[bytes] = []
    try:
        await consumer.topics()  # fetches metadata
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not tps:
            return out
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        while True:
            batch = await consumer.getmany(timeout_ms=idle_ms, max_records=50_000)
            for records in batch.values():
                out.extend(r.value for r in records if r.value)
            if batch:
                continue
            behind = [tp for tp, end in ends.items() if await consumer.position(tp) < end]
            if not behind:
                return out
    finally:
        await consumer.stop()


async def consumer_lag(
    kafka: KafkaConnection, group: str, topics: tuple[str, ...], partitions: int
) -> int:
    """Messages of `topics` that consumer group `group` has not committed yet.

    Reads committed offsets with a consumer of that group that never subscribes,
    so it neither joins nor disturbs the group (Tansu has no group-offsets admin API).
    """
    consumer = kafka.consumer(group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t in topics for p in range(partitions)]
        ends = await consumer.end_offsets(tps)
        lag = 0
        for tp, end in ends.items():
            # Tansu reports a multi-record batch's base offset + 1 as the end, which can
            # sit below a committed offset: clamp, and let callers also check the data.
            lag += max(0, end - (await consumer.committed(tp) or 0))
        return lag
    finally:
        await consumer.stop()
