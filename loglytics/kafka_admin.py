"""Topic creation for clients that may run before the worker (send, ask, tenants, demo).

The worker declares the same topics through Faust; creating them here first,
with the same partition count, keeps a shipper's first batch from auto-creating
a topic with the broker's default layout.
"""

from __future__ import annotations

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from loglytics.topics import ALL_TOPICS


async def ensure_topics(bootstrap: str, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
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
