"""`loglytics send`: ship lines to `logs.raw` in batches, the way a log shipper does.

One Kafka message carries up to `--batch-lines` lines of one tenant/source
(a LogBatch), keyed `tenant/source` so the source stays ordered on one
partition and the pipeline pays per message, not per line. A batch is also cut
by bytes, at the largest original a dead letter carries whole
(`loglytics.deadletters.largest_whole_original`): long lines can then neither
make a message the broker refuses nor one the worker cannot give up on whole.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import AsyncIterator, Iterable, Iterator

import orjson
from aiokafka import AIOKafkaProducer
from rich.progress import BarColumn, Progress, TextColumn, TransferSpeedColumn

from loglytics.commands import broker
from loglytics.deadletters import largest_whole_original
from loglytics.kafka_admin import ensure_topics
from loglytics.kafka_clients import MAX_MESSAGE_BYTES, KafkaConnection
from loglytics.schemas import LogBatch
from loglytics.settings import get_settings
from loglytics.topics import RAW_LOGS

PROGRESS_MIN_BYTES = 1 << 20


def batches(lines: Iterable[str], size: int, max_bytes: int) -> Iterator[list[str]]:
    """Non-empty lines in batches of at most `size` lines whose JSON (each line encoded as
    in a LogBatch, plus its comma) takes at most `max_bytes`; a line longer than that on
    its own goes alone (a line is never split)."""
    batch: list[str] = []
    used = 0
    for line in lines:
        line = line.rstrip("\r\n")
        if not line:
            continue
        cost = len(orjson.dumps(line)) + 1
        if batch and used + cost > max_bytes:
            yield batch
            batch, used = [], 0
        batch.append(line)
        used += cost
        if len(batch) >= size:
            yield batch
            batch, used = [], 0
    if batch:
        yield batch


def batch_line_bytes(tenant: str, source: str, fmt: str | None) -> int:
    """The bytes of lines a LogBatch of this tenant/source/format can hold and still be
    dead-lettered whole: the whole-original limit less the batch's own envelope."""
    envelope = len(LogBatch(tenant=tenant, source=source, format=fmt, lines=[]).to_bytes())
    return largest_whole_original() - envelope


def shipper_producer(kafka: KafkaConnection) -> AIOKafkaProducer:
    """A producer set up the way a log shipper would be: large batches, short linger."""
    return kafka.producer(
        linger_ms=5,
        max_batch_size=1 << 20,
        acks=1,
        max_request_size=MAX_MESSAGE_BYTES,
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
    max_bytes = batch_line_bytes(args.tenant, args.source, args.format)
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
                batches(stream, args.batch_lines, max_bytes),
                args.format,
            )
        with Progress(
            TextColumn("sending"), BarColumn(), TransferSpeedColumn(), console=None, transient=True
        ) as progress:
            task = progress.add_task("send", total=size)

            def tracked() -> Iterator[list[str]]:
                for chunk in batches(stream, args.batch_lines, max_bytes):
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
