"""`loglytics tenants add|list|set-tier|delete`: the compacted `tenants` topic is the truth.

Plain Kafka client: it reads the topic to its end for the current records and
produces updated ones, which the worker's tenant table (whose changelog is
this topic) picks up while it runs — a tier change applies to the next call.
API keys are printed once, at creation; only their SHA-256 is stored.

`delete` writes a disabled record with no keys (refused at once, even by a
worker that has not reached the tombstone yet), then the tombstone; the
worker's tenants stage drops the tenant's table state and deletes its rows
from ClickHouse on the tombstone (the worker owns ClickHouse, not this CLI).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import time

from aiokafka import TopicPartition

from loglytics.commands import broker
from loglytics.kafka_admin import ensure_topics
from loglytics.kafka_clients import KafkaConnection
from loglytics.schemas import DecodeError, TenantRecord, hash_api_key, new_api_key
from loglytics.settings import get_settings
from loglytics.topics import TENANTS

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
READ_TIMEOUT = 30.0


async def read_tenants(kafka: KafkaConnection, partitions: int = 4) -> dict[str, TenantRecord]:
    """Every tenant's latest record: the topic read from the beginning to its current end."""
    await ensure_topics(kafka, partitions)
    consumer = kafka.consumer(group_id=None, enable_auto_commit=False)
    await consumer.start()
    records: dict[str, TenantRecord] = {}
    try:
        await consumer.topics()
        parts = consumer.partitions_for_topic(TENANTS.name) or set(range(partitions))
        tps = [TopicPartition(TENANTS.name, p) for p in sorted(parts)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)

        async def behind() -> bool:
            return any([await consumer.position(tp) < ends[tp] for tp in tps])

        async with asyncio.timeout(READ_TIMEOUT):
            while await behind():
                batch = await consumer.getmany(timeout_ms=500)
                for msgs in batch.values():
                    for msg in msgs:
                        name = msg.key.decode(errors="replace") if msg.key else ""
                        if msg.value is None:  # a tombstone removes the tenant
                            records.pop(name, None)
                            continue
                        try:
                            records[name] = TenantRecord.from_bytes(msg.value)
                        except DecodeError:
                            continue
    finally:
        await consumer.stop()
    return records


async def write_tenant(kafka: KafkaConnection, record: TenantRecord) -> None:
    producer = kafka.producer(acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(
            TENANTS.name, key=record.tenant.encode(), value=record.to_bytes()
        )
    finally:
        await producer.stop()


async def delete(kafka: KafkaConnection, partitions: int, name: str) -> bool:
    """Disable the tenant, then tombstone it; False when there is no such tenant."""
    current = (await read_tenants(kafka, partitions)).get(name)
    if current is None:
        return False
    disabled = current.model_copy(
        update={"enabled": False, "api_key_hashes": [], "updated_at": time.time()}
    )
    await write_tenant(kafka, TenantRecord.from_obj(disabled.model_dump(mode="json")))
    producer = kafka.producer(acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(TENANTS.name, key=name.encode(), value=None)
    finally:
        await producer.stop()
    return True


async def add(kafka: KafkaConnection, partitions: int, name: str, tier: str | None) -> str:
    """Create the tenant (or add a key to an existing one); returns the new API key."""
    current = (await read_tenants(kafka, partitions)).get(name)
    key = new_api_key()
    hashes = [*(current.api_key_hashes if current else []), hash_api_key(key)]
    record = TenantRecord(
        tenant=name,
        tier=tier or (current.tier if current else "free"),  # type: ignore[arg-type]
        api_key_hashes=hashes,
        enabled=True,
        updated_at=time.time(),
    )
    await write_tenant(kafka, record)
    return key


async def set_tier(kafka: KafkaConnection, partitions: int, name: str, tier: str) -> bool:
    current = (await read_tenants(kafka, partitions)).get(name)
    if current is None:
        return False
    updated = current.model_copy(update={"tier": tier, "updated_at": time.time()})
    await write_tenant(kafka, TenantRecord.from_obj(updated.model_dump(mode="json")))
    return True


def run(args: argparse.Namespace) -> int:
    settings = get_settings()
    kafka = broker()
    if kafka is None:
        return 2
    parts = settings.topic_partitions
    tier: str | None = args.tier_opt or args.tier
    if args.action == "list":
        records = asyncio.run(read_tenants(kafka, parts))
        print(f"{'tenant':24s} {'tier':5s} enabled")
        for name in sorted(records):
            r = records[name]
            print(f"{r.tenant:24s} {r.tier:5s} {'yes' if r.enabled else 'no'}")
        return 0
    if not args.name or not NAME.match(args.name):
        print("a tenant name is required: letters, digits, '_', '.', '-' (max 64)", file=sys.stderr)
        return 2
    if args.action == "add":
        key = asyncio.run(add(kafka, parts, args.name, tier))
        print(key)
        print(
            f"tenant {args.name!r} ready; the API key above is shown only once — store it now",
            file=sys.stderr,
        )
        return 0
    if args.action == "delete":
        if not asyncio.run(delete(kafka, parts, args.name)):
            print(f"no tenant {args.name!r}", file=sys.stderr)
            return 1
        print(f"tenant {args.name!r} disabled; its data is deleted by the worker", file=sys.stderr)
        return 0
    if tier is None:
        print("set-tier needs a tier: free or pro", file=sys.stderr)
        return 2
    if not asyncio.run(set_tier(kafka, parts, args.name, tier)):
        print(f"no tenant {args.name!r}", file=sys.stderr)
        return 1
    print(f"tenant {args.name!r} is now on the {tier} tier", file=sys.stderr)
    return 0
