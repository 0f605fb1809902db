"""Ingest benchmark: the worker's pipeline against a bare Kafka consumer of the same topic.

For each size N (``--small-lines`` then ``--lines``), on a private embedded
broker (Tansu, started with ``loglytics.embedded.stack.up(tied=True)`` in a
temporary STATE_DIR and stopped afterwards) or on ``--bootstrap``:

1. N realistic mixed-format lines (``synthetic.mixed_lines``: log4j, Python,
   JSON, syslog and Apache sources, spread over ``--tenants`` tenants) are
   produced to ``logs.raw`` as LogBatch messages of ``--batch-lines`` lines
   keyed ``tenant/source``, as ``loglytics send`` ships them. Not timed.
2. Baseline: a bare ``AIOKafkaConsumer`` (no group, default fetch settings)
   reads ``logs.raw`` from the earliest offsets to the end and decodes every
   message value to its lines (``orjson.loads(value)["lines"]``, summing
   ``len``). Timed from ``start()`` returning to the last message; best of
   ``--bare-repeat`` runs (the faster baseline, the lower the ratio).
3. Pipeline: ``--workers`` real ``loglytics worker`` processes (fresh APP_ID,
   so a fresh consumer group and changelogs; WINDOW_SECONDS=60,
   WINDOW_IDLE_CLOSE_SECONDS=1) consume the same topic until the digests on
   ``logs.windows`` account for all N lines (sum of ``line_count``). Three
   times (see ``loglytics.bench.workers``): the steady absorb rate from the
   workers' parsed-lines counter (``absorb_lines_per_s``), the close latency
   from the last line absorbed to the last digest (``close_latency_s``, mostly
   the idle close of each source's last window), and end to end from the first
   worker's "Worker ready" (``end_to_end_lines_per_s``). Peak RSS is each
   worker's VmHWM from /proc, read before it is stopped.
4. ``ratio``: the steady absorb rate over the bare consumer's read rate, both
   on this run's topic: how close the pipeline comes to reading as fast as a
   consumer that does nothing with the lines.

Each size gets its own fresh broker, so the runs do not see each other's data.
With ``--bootstrap``, each run's tenants are unique (``bench-<run>-<n>``), so
the bare consumer and the window count skip older data, but the worker's fresh
group still starts at the earliest offset and processes it: give it an empty
``logs.raw`` for a fair number. ``--in-process`` runs only the hot path in this
process (no broker, no Faust). The final line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiokafka import TopicPartition

from loglytics.bench import json_line
from loglytics.bench.workers import (
    UNUSED_LLM_URL,
    PipelineRun,
    PipelineSpec,
    end_offsets,
    pipeline,
)
from loglytics.commands.send import shipper_producer
from loglytics.embedded import stack as embedded_stack
from loglytics.kafka_admin import ensure_topics
from loglytics.kafka_clients import KafkaConnection
from loglytics.partitioning import partition_for
from loglytics.schemas import LogBatch
from loglytics.settings import Settings, load_settings
from loglytics.synthetic import mixed_lines
from loglytics.topics import RAW_LOGS

__all__ = ["run"]


@dataclass
class Produced:
    messages: int = 0
    lines: int = 0
    bytes: int = 0
    per_partition: Counter[int] = field(default_factory=Counter)
    start_offsets: dict[int, int] = field(default_factory=dict)
    # Tenants are `{prefix}{n}`; unique per run on a shared broker, to tell older data apart.
    prefix: str = "bench-"


def synthetic_batches(
    lines: int, batch_lines: int, tenants: int, start_ts: float, rate: float, prefix: str = "bench"
) -> Iterator[tuple[str, str, list[str]]]:
    """(tenant, source, lines) chunks of N mixed-format lines, as a shipper would cut them."""
    buffers: dict[tuple[str, str], list[str]] = {}
    for i, (source, line) in enumerate(mixed_lines(lines, start_ts, rate, seed=11)):
        tenant = f"{prefix}{i % tenants}"
        buf = buffers.setdefault((tenant, source), [])
        buf.append(line)
        if len(buf) >= batch_lines:
            yield tenant, source, buffers.pop((tenant, source))
    for (tenant, source), rest in buffers.items():
        yield tenant, source, rest


def hot_path(opts: argparse.Namespace) -> dict[str, Any]:
    """The worker's per-message work in this process, without Kafka or Faust.

    decode_message -> SourcePipeline.process_batch -> windows.add_batch ->
    closable -> export_dirty + activity, per LogBatch, exactly as the ingest
    agent does (minus the table writes). Prints throughput and this process's
    peak RSS at checkpoints: the ingest state is bounded, and what grows is the
    miners' shape caches, up to their caps (`MinerConfig.max_shape_cache` per
    source).
    """
    from loglytics.ingest.pipeline import Decoded, SourcePipeline, decode_message
    from loglytics.ingest.state import SourceState, new_source_state
    from loglytics.ingest.windows import add_batch, closable

    settings = load_settings()
    start_ts = float(int(time.time() - 2 * 3600) // 60 * 60)
    pipes: dict[str, SourcePipeline] = {}
    states: dict[str, SourceState] = {}
    step = max(opts.lines // 8, 1)
    next_mark = step
    rss_at: dict[str, float] = {}
    lines = 0
    busy = 0.0
    chunks = synthetic_batches(opts.lines, opts.batch_lines, opts.tenants, start_ts, opts.rate)
    for tenant, source, chunk in chunks:
        key = f"{tenant}/{source}"
        value = LogBatch(tenant=tenant, source=source, lines=chunk).to_bytes()
        began = time.perf_counter()
        decoded = decode_message(key.encode(), value)
        assert isinstance(decoded, Decoded)
        pipe = pipes.get(key) or pipes.setdefault(key, SourcePipeline(tenant, source))
        state = states.setdefault(key, new_source_state())
        add_batch(state, pipe.process_batch(decoded, time.time()), 60.0, 10.0)
        closable(state, settings.allowed_lateness_seconds, idle=False)
        pipe.miner.export_dirty()
        pipe.miner.activity()
        busy += time.perf_counter() - began
        lines += len(chunk)
        if lines >= next_mark:
            mib = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
            rss_at[str(lines)] = mib
            print(f"{lines:>10,} lines  {lines / busy:>9,.0f} lines/s  peak RSS {mib} MiB")
            next_mark += step
    return {
        "mode": "in-process",
        "lines": lines,
        "in_process_lines_per_s": round(lines / busy),
        "peak_rss_mb_at_lines": rss_at,
        "sources": len(pipes),
    }


async def produce(
    kafka: KafkaConnection,
    lines: int,
    batch_lines: int,
    tenants: int,
    partitions: int,
    start_ts: float,
    rate: float,
    unique: bool = False,
) -> Produced:
    """Ship N synthetic lines as LogBatches of one tenant/source each, like `loglytics send`."""
    await ensure_topics(kafka, partitions)
    out = Produced(
        start_offsets=await end_offsets(kafka, RAW_LOGS.name),
        # A private broker is empty: fixed names keep the partition layout the same per run.
        prefix=f"bench-{uuid.uuid4().hex[:6]}-" if unique else "bench",
    )
    producer = shipper_producer(kafka)
    await producer.start()
    pending: list[asyncio.Future[Any]] = []

    async def ship(tenant: str, source: str, chunk: list[str]) -> None:
        value = LogBatch(tenant=tenant, source=source, lines=chunk).to_bytes()
        key = f"{tenant}/{source}".encode()
        pending.append(await producer.send(RAW_LOGS.name, value=value, key=key))
        out.messages += 1
        out.lines += len(chunk)
        out.bytes += len(value)
        out.per_partition[partition_for(key, partitions)] += 1
        if len(pending) >= 256:
            await asyncio.gather(*pending)
            pending.clear()

    try:
        chunks = synthetic_batches(lines, batch_lines, tenants, start_ts, rate, out.prefix)
        for tenant, source, chunk in chunks:
            await ship(tenant, source, chunk)
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return out


async def bare_consume(kafka: KafkaConnection, produced: Produced) -> tuple[float, int]:
    """Read the produced messages end to end and count their lines; (seconds, lines)."""
    prefix = produced.prefix.encode()
    consumer = kafka.consumer(enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        tps = [TopicPartition(RAW_LOGS.name, p) for p in sorted(produced.start_offsets)]
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, produced.start_offsets[tp.partition])
        start = time.perf_counter()
        messages = lines = 0
        while messages < produced.messages:
            batch = await consumer.getmany(timeout_ms=1000)
            for records in batch.values():
                for record in records:
                    if record.key is None or not record.key.startswith(prefix):
                        continue  # older data (Tansu's ListOffsets can point before the run)
                    messages += 1
                    lines += len(orjson.loads(record.value)["lines"])
        return time.perf_counter() - start, lines
    finally:
        await consumer.stop()


def _broker(opts: argparse.Namespace, root: Path) -> tuple[KafkaConnection, bool, Settings | None]:
    """(the broker, whether it is Tansu, the private stack's settings to stop it, if ours)."""
    if opts.bootstrap:
        # An external broker: the configured security (KAFKA_SECURITY_PROTOCOL, ...).
        settings = load_settings(kafka_bootstrap_servers=opts.bootstrap)
        embedded = os.environ.get("KAFKA_EMBEDDED", "").lower() in ("1", "true")
        return KafkaConnection.from_settings(settings), embedded, None
    settings = load_settings(
        state_dir=root / "stack",
        kafka_bootstrap_servers="",
        llamacpp_base_url=UNUSED_LLM_URL,
        ollama_base_url="",
        vllm_base_url="",
        clickhouse_dsn=f"chdb://{root / 'clickhouse'}",
    )
    return KafkaConnection(embedded_stack.up(settings, tied=True).kafka), True, settings


def run_size(n: int, opts: argparse.Namespace) -> dict[str, Any]:
    """One complete measurement (own broker unless --bootstrap) for N lines."""
    with tempfile.TemporaryDirectory(prefix="loglytics-bench-") as tmp:
        root = Path(tmp)
        kafka, embedded, settings = _broker(opts, root)
        try:
            # Syslog stamps carry no year, so event time is kept inside the current year,
            # and in the past so that no line trips the future-timestamp flag.
            start_ts = float(int(time.time() - 2 * 3600) // 60 * 60)
            produced = asyncio.run(
                produce(
                    kafka,
                    n,
                    opts.batch_lines,
                    opts.tenants,
                    opts.partitions,
                    start_ts,
                    opts.rate,
                    unique=bool(opts.bootstrap),
                )
            )
            bare = []
            for _ in range(max(1, opts.bare_repeat)):
                secs, got = asyncio.run(bare_consume(kafka, produced))
                if got != produced.lines:
                    raise RuntimeError(f"bare consumer read {got} lines, expected {produced.lines}")
                bare.append(secs)
            spec = PipelineSpec(
                produced.lines,
                produced.prefix,
                opts.workers,
                root,
                embedded,
                opts.partitions,
                opts.timeout,
            )
            piped = asyncio.run(pipeline(kafka, spec))
        finally:
            if settings is not None:
                embedded_stack.down(settings)
    return _result(produced, min(bare), piped, opts)


def _result(
    produced: Produced, bare_s: float, piped: PipelineRun, opts: argparse.Namespace
) -> dict[str, Any]:
    """The measurement as the bench reports it, and its one-line summary printed."""
    absorb_rate = piped.absorbed_lines / piped.absorb_s if piped.absorb_s else None
    bare_rate = produced.lines / bare_s
    result = {
        "lines": produced.lines,
        "messages": produced.messages,
        "mb": round(produced.bytes / 1e6, 1),
        "workers": opts.workers,
        "pipeline_s": round(piped.seconds, 3),
        "end_to_end_lines_per_s": round(produced.lines / piped.seconds),
        "absorb_s": round(piped.absorb_s, 3) if piped.absorb_s else None,
        "absorb_lines_per_s": round(absorb_rate) if absorb_rate else None,
        "close_latency_s": _round(piped.close_latency_s),
        "bare_consumer_s": round(bare_s, 3),
        "bare_consumer_lines_per_s": round(bare_rate),
        "ratio": round(absorb_rate / bare_rate, 4) if absorb_rate else None,
        "worker_cpu_s": round(sum(piped.worker_cpu_s), 2),
        "lines_per_worker_cpu_s": round(produced.lines / max(sum(piped.worker_cpu_s), 1e-9)),
        "peak_rss_mb": round(max(piped.peak_rss_mb), 1),
        "peak_rss_mb_each": [round(x, 1) for x in piped.peak_rss_mb],
        "windows": piped.windows,
        "deadletters": piped.deadletters,
        "ready_spread_s": round(piped.ready_spread_s, 3),
        "messages_per_partition": {str(p): c for p, c in sorted(produced.per_partition.items())},
    }
    print(
        f"{produced.lines:>9,} lines {produced.messages:>5} msgs  "
        f"bare {result['bare_consumer_lines_per_s']:>10,} lines/s  "
        f"absorb x{opts.workers} {result['absorb_lines_per_s'] or 0:>9,} lines/s  "
        f"ratio {result['ratio'] or 0:.3f}  close {result['close_latency_s'] or 0:.2f} s  "
        f"end to end {result['end_to_end_lines_per_s']:>9,} lines/s  "
        f"peak RSS {result['peak_rss_mb']:.0f} MiB  "
        f"({piped.windows} windows, {piped.deadletters} dead letters)",
        flush=True,
    )
    return result


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def run(args: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print a table and a final JSON line, return it."""
    parser = argparse.ArgumentParser(prog="loglytics bench ingest", description=__doc__)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument(
        "--small-lines",
        type=int,
        default=200_000,
        help="a smaller run first, to compare peak RSS across N (0: skip)",
    )
    parser.add_argument("--batch-lines", type=int, default=500, help="lines per LogBatch")
    parser.add_argument("--workers", type=int, default=1, help="worker processes, one group")
    parser.add_argument("--tenants", type=int, default=4, help="tenants (x5 sources)")
    parser.add_argument("--partitions", type=int, default=4, help="TOPIC_PARTITIONS")
    parser.add_argument("--rate", type=float, default=1000.0, help="event-time lines per second")
    parser.add_argument("--bare-repeat", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=1200.0, help="per pipeline run")
    parser.add_argument("--bootstrap", default="", help="use this broker instead of a private one")
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="only the hot path in this process (no broker, no worker): lines/s and RSS by N",
    )
    opts = parser.parse_args(args)
    if opts.in_process:
        result = hot_path(opts)
        print(json_line(result))
        return result
    sizes = [opts.lines]
    if 0 < opts.small_lines < opts.lines:
        sizes.insert(0, opts.small_lines)
    runs = [run_size(n, opts) for n in sizes]
    result = dict(runs[-1])
    result["batch_lines"] = opts.batch_lines
    if len(runs) > 1:
        small = runs[0]
        result["small"] = {
            k: small[k]
            for k in (
                "lines",
                "end_to_end_lines_per_s",
                "absorb_lines_per_s",
                "bare_consumer_lines_per_s",
                "ratio",
                "close_latency_s",
            )
        }
        result["small"]["peak_rss_mb"] = small["peak_rss_mb"]
        result["rss_growth"] = round(result["peak_rss_mb"] / max(1.0, small["peak_rss_mb"]), 3)
    print(json_line(result))
    return result


if __name__ == "__main__":
    run()
