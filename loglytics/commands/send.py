"""`loglytics send`: ship lines to `logs.raw` in batches, the way a log shipper does.

One Kafka message carries up to `--batch-lines` lines of one tenant/source
(a LogBatch), keyed `tenant/source` so the source stays ordered on one
partition and the pipeline pays per message, not per line.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import AsyncIterator, Iterable, Iterator

from aiokafka import AIOKafkaProducer
from rich.progress import BarColumn, Progress, TextColumn, TransferSpeedColumn

from loglytics.commands import broker
from loglytics.kafka_admin import ensure_topics
from loglytics.kafka_clients import KafkaConnection
from loglytics.schemas import LogBatch
from loglytics.settings import get_settings
from loglytics.topics import RAW_LOGS

PROGRESS_MIN_BYTES = 1 << 20


def batches(lines: Iterable[str], size: int) -> Iterator[list[str]]:
    batch: list[str] = []
    for line in lines:
        line = line.rstrip("\r\n")
        if not line:
            continue
        batch.append(line)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def shipper_producer(kafka: KafkaConnection) -> AIOKafkaProducer:
    """A producer set up the way a log shipper would be: large batches, short linger."""
    return kafka.producer(
        linger_ms=5,
        max_batch_size=1 << 20,
        acks=1,
        max_request_size=8 << 20,
    )


async def produce_batches(
    kafka: KafkaConnection,
    tenant: str,
    source: str,
    chunks: Iterable[list[str]] | AsyncIterator[list[str]],
    fmt: str | None = None,
) -> int:
    """Produce LogBatches; returns the number of lines sent."""
    producer = shipper_producer(kafka)
    await producer.start()
    key = f"{tenant}/{source}".encode()
    sent = 0
    try:
        pending = []
        if isinstance(chunks, AsyncIterator):
            async for chunk in chunks:
                value = LogBatch(tenant=tenant, source=source, format=fmt, lines=chunk).to_bytes()
                pending.append(await producer.send(RAW_LOGS.name, value=value, key=key))
                sent += len(chunk)
        else:
            for chunk in chunks:
                value = LogBatch(tenant=tenant, source=source, format=fmt, lines=chunk).to_bytes()
                pending.append(await producer.send(RAW_LOGS.name, value=value, key=key))
                sent += len(chunk)
                if len(pending) >= 256:
                    await asyncio.gather(*pending)
                    pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return sent


def run(args: argparse.Namespace) -> int:
    settings = get_settings()
    kafka = broker()
    if kafka is None:
        return 2
    if args.file == "-":
        stream = sys.stdin
        size = 0
    else:
        stream = open(args.file, encoding="utf-8", errors="replace")  # noqa: SIM115
        size = os.path.getsize(args.file)

    async def main() -> int:
        await ensure_topics(kafka, settings.topic_partitions)
        if size < PROGRESS_MIN_BYTES or args.no_progress:
            return await produce_batches(
                kafka,
                args.tenant,
                args.source,
                batches(stream, args.batch_lines),
                args.format,
            )
        with Progress(
            TextColumn("sending"), BarColumn(), TransferSpeedColumn(), console=None, transient=True
        ) as progress:
            task = progress.add_task("send", total=size)

            def tracked() -> Iterator[list[str]]:
                for chunk in batches(stream, args.batch_lines):
                    progress.update(task, advance=sum(len(x) + 1 for x in chunk))
                    yield chunk

            return await produce_batches(kafka, args.tenant, args.source, tracked(), args.format)

    try:
        sent = asyncio.run(main())
    finally:
        if stream is not sys.stdin:
            stream.close()
    print(f"sent {sent} lines to {RAW_LOGS.name} as {args.tenant}/{args.source}", file=sys.stderr)
    return 0
