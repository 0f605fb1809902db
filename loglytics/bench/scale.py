"""Scale-out benchmark: one worker against two in one consumer group, same input, same run.

On one private embedded broker (Tansu, chdb, in a temporary STATE_DIR):

1. N mixed-format lines (``synthetic.mixed_lines``) are produced once to
   ``logs.raw`` as 500-line LogBatches keyed ``tenant/source``. Each
   tenant/source gets a tenant name chosen so that the keys fall evenly over
   the partitions (``--partitions``, 4 by default: two per worker of two), so
   no worker is handed more of the input than another. Not timed.
2. The same topic is consumed by a fresh group (fresh APP_ID, changelogs and
   state) of one worker, then of two, then of two and one again
   (``--rounds 2``: the order alternates, so drift in the machine's load and
   the broker's growing log weigh on both sides alike). Each run is the
   ingest bench's (``loglytics.bench.workers.pipeline``): real ``loglytics
   worker`` processes until the digests on ``logs.windows`` account for all N.
3. Throughput, from each worker's own parsed-lines counter read on its own
   (``loglytics.bench.busy``):

   - ``busy``: the rate while every worker of the group was taking lines in,
     from the last worker's first reading that moved to the first worker's
     reading at its final count. This is the headline (``lines_per_s_1``,
     ``lines_per_s_2``, ``speedup``): it is what a group sustains on a stream
     that does not end, and it leaves out what happens once per run and does
     not scale with workers: start-up, the group's first rebalance, the idle
     close of the last windows, and the tail where one worker has finished its
     partitions and the other has not.
   - ``whole``: from the first reading that moved to the last worker at its
     final count (``speedup_whole``), start-up rebalance and tail included.
   - ``end_to_end``: first "Worker ready" to every line in a digest
     (``speedup_end_to_end``), idle close included.

   ``reprocessed_lines`` is the counters' sum minus N: lines a new owner read
   again after a rebalance (not committed yet by the old one); they are work
   done, so they count in the rates of the window they fall in.
4. Admission (when ``loglytics.ledger`` is present): sequential reserve and
   settle round trips through ``RemoteLedger`` against a running worker, p50
   and p99 in ms (``loglytics.bench.admission``).

The final line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path
from typing import Any

from loglytics.bench import json_line
from loglytics.bench.busy import Busy, SeriesProbe, Span, busy_window, whole_span
from loglytics.bench.cpu import CpuSampler
from loglytics.bench.ingest import synthetic_batches
from loglytics.bench.workers import UNUSED_LLM_URL, PipelineRun, PipelineSpec, pipeline
from loglytics.commands.send import shipper_producer
from loglytics.embedded import stack as embedded_stack
from loglytics.kafka_admin import ensure_topics
from loglytics.kafka_clients import KafkaConnection
from loglytics.partitioning import partition_for, source_key
from loglytics.schemas import LogBatch
from loglytics.settings import Settings, load_settings
from loglytics.topics import RAW_LOGS

__all__ = ["run"]

PREFIX = "scale"
"""Tenant names start with it; the pipeline counts only digests of these tenants."""


@dataclass
class Input:
    """What was produced: lines in all and per partition."""

    lines: int = 0
    messages: int = 0
    keys: int = 0
    lines_per_partition: Counter[int] = field(default_factory=Counter)


class EvenKeys:
    """Names each tenant/source's tenant so that the keys spread evenly over the partitions.

    Kafka's partitioner hashes the key, and 20 keys hashed over 4 partitions
    rarely split 5/5/5/5: a worker of two would get more of the input than the
    other and the group would wait on it. Trying names until the key lands on
    the least loaded partition keeps the data the same (same lines, same
    sources) and only changes which tenant name each source ships under.
    """

    def __init__(self, partitions: int) -> None:
        self.partitions = partitions
        self.names: dict[tuple[str, str], str] = {}
        self.keys_per_partition: Counter[int] = Counter({p: 0 for p in range(partitions)})

    def tenant(self, tenant: str, source: str) -> str:
        known = self.names.get((tenant, source))
        if known is not None:
            return known
        least = min(self.keys_per_partition.values())
        for attempt in count():
            name = f"{tenant}k{attempt}"
            part = partition_for(source_key(name, source), self.partitions)
            if self.keys_per_partition[part] == least:
                self.keys_per_partition[part] += 1
                self.names[(tenant, source)] = name
                return name
        raise AssertionError("unreachable")


def even_batches(opts: argparse.Namespace, start_ts: float) -> Iterator[tuple[str, str, list[str]]]:
    """The ingest bench's (tenant, source, lines) chunks, tenants renamed by `EvenKeys`."""
    keys = EvenKeys(opts.partitions)
    for tenant, source, chunk in synthetic_batches(
        opts.lines, opts.batch_lines, opts.tenants, start_ts, opts.rate, PREFIX
    ):
        yield keys.tenant(tenant, source), source, chunk


async def produce(kafka: KafkaConnection, opts: argparse.Namespace) -> Input:
    """Ship the chunks as `loglytics send` does (not timed)."""
    await ensure_topics(kafka, opts.partitions)
    # Syslog stamps carry no year: event time stays in this year, and in the past.
    start_ts = float(int(time.time() - 2 * 3600) // 60 * 60)
    out = Input()
    seen: set[bytes] = set()
    producer = shipper_producer(kafka)
    await producer.start()
    pending: list[asyncio.Future[Any]] = []
    try:
        for tenant, source, chunk in even_batches(opts, start_ts):
            key = source_key(tenant, source).encode()
            value = LogBatch(tenant=tenant, source=source, lines=chunk).to_bytes()
            pending.append(await producer.send(RAW_LOGS.name, value=value, key=key))
            seen.add(key)
            out.messages += 1
            out.lines += len(chunk)
            out.lines_per_partition[partition_for(key, opts.partitions)] += len(chunk)
            if len(pending) >= 256:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    out.keys = len(seen)
    return out


@dataclass(frozen=True)
class GroupRun:
    """One group's run over the whole input."""

    workers: int
    piped: PipelineRun
    busy: Busy | None
    whole: Span | None
    lines_per_worker: list[int]
    busy_cores: dict[str, float] | None
    """Mean cores used in the busy window: machine, broker, workers, bench, other."""

    def per_worker_core(self) -> int | None:
        """Busy lines/s over the cores the workers used then: the rate the load did not set."""
        if self.busy is None or not self.busy_cores or self.busy_cores["workers"] <= 0:
            return None
        return round(self.busy.lines_per_s / self.busy_cores["workers"])

    def summary(self, produced: int) -> dict[str, Any]:
        return {
            "workers": self.workers,
            "busy_lines_per_s": round(self.busy.lines_per_s) if self.busy else None,
            "busy_s": round(self.busy.seconds, 3) if self.busy else None,
            "busy_lines_per_s_per_worker": [round(r) for r in self.busy.rates]
            if self.busy
            else None,
            "busy_cores": self.busy_cores,
            "busy_lines_per_worker_core": self.per_worker_core(),
            "whole_lines_per_s": _rate(self.whole),
            "whole_s": _secs(self.whole),
            "end_to_end_lines_per_s": round(produced / self.piped.seconds),
            "close_latency_s": _round(self.piped.close_latency_s),
            "ready_spread_s": round(self.piped.ready_spread_s, 3),
            "lines_per_worker": self.lines_per_worker,
            "reprocessed_lines": sum(self.lines_per_worker) - produced,
            "worker_cpu_s": [round(s, 2) for s in self.piped.worker_cpu_s],
        }


async def group_run(kafka: KafkaConnection, spec: PipelineSpec, broker_pid: int) -> GroupRun:
    """The ingest bench's pipeline run, with each worker's counter readings and the CPU kept."""
    probes: list[SeriesProbe] = []

    def probe(ports: list[int], target: int) -> SeriesProbe:
        probes.append(SeriesProbe(ports, target))
        return probes[-1]

    cpu = CpuSampler(broker_pid)
    sampling = asyncio.create_task(cpu.run())
    try:
        piped = await pipeline(kafka, spec, probe)
    finally:
        sampling.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampling
    series = probes[0].series
    busy = busy_window(series)
    return GroupRun(
        workers=spec.workers,
        piped=piped,
        busy=busy,
        whole=whole_span(series),
        lines_per_worker=[round(s[-1][1]) if s else 0 for s in series],
        busy_cores=cpu.cores(busy.start, busy.end) if busy else None,
    )


def _rate(span: Span | None) -> int | None:
    return round(span.lines_per_s) if span and span.seconds > 0 else None


def _secs(span: Span | None) -> float | None:
    return round(span.seconds, 3) if span else None


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def worker_order(rounds: int) -> list[int]:
    """1, 2, then 2, 1, ...: each side runs first as often as the other."""
    return [w for r in range(rounds) for w in ((1, 2) if r % 2 == 0 else (2, 1))]


def stack_settings(root: Path) -> Settings:
    """A private stack under `root`: Tansu and chdb, no LLM (the bench measures ingest)."""
    return load_settings(
        state_dir=root / "stack",
        kafka_bootstrap_servers="",
        llamacpp_base_url=UNUSED_LLM_URL,
        ollama_base_url="",
        vllm_base_url="",
        clickhouse_dsn=f"chdb://{root / 'clickhouse'}",
    )


def mean_rate(runs: list[GroupRun], workers: int, key: str, produced: int) -> float | None:
    """The mean of one figure over the runs of one group size (None if any run lacks it)."""
    values = [r.summary(produced)[key] for r in runs if r.workers == workers]
    return None if not values or None in values else statistics.fmean(values)


def ratio(two: float | None, one: float | None) -> float | None:
    return round(two / one, 3) if two and one else None


def scale_result(produced: Input, runs: list[GroupRun], opts: argparse.Namespace) -> dict[str, Any]:
    """The JSON line: the busy rates and their ratio first, the other two definitions beside."""
    one, two = (mean_rate(runs, w, "busy_lines_per_s", produced.lines) for w in (1, 2))
    result: dict[str, Any] = {
        "bench": "scale",
        "lines": produced.lines,
        "messages": produced.messages,
        "keys": produced.keys,
        "partitions": opts.partitions,
        "lines_per_partition": [produced.lines_per_partition[p] for p in range(opts.partitions)],
        "throughput": "busy: every worker taking lines in (start-up rebalance and tail left out)",
        "lines_per_s_1": round(one) if one else None,
        "lines_per_s_2": round(two) if two else None,
        "speedup": ratio(two, one),
    }
    for name, key in (
        ("speedup_whole", "whole_lines_per_s"),
        ("speedup_end_to_end", "end_to_end_lines_per_s"),
        ("per_worker_core_2_over_1", "busy_lines_per_worker_core"),
    ):
        one_k, two_k = (mean_rate(runs, w, key, produced.lines) for w in (1, 2))
        result[name] = ratio(two_k, one_k)
    result["speedup_per_round"] = [
        ratio(*(mean_rate(pair, w, "busy_lines_per_s", produced.lines) for w in (2, 1)))
        for pair in (runs[i : i + 2] for i in range(0, len(runs), 2))
    ]
    result["runs"] = [r.summary(produced.lines) for r in runs]
    return result


def print_run(group: GroupRun, produced: int) -> None:
    s = group.summary(produced)
    print(
        f"{s['workers']} worker(s): busy {s['busy_lines_per_s'] or 0:>9,} lines/s over "
        f"{s['busy_s'] or 0:.2f} s  whole {s['whole_lines_per_s'] or 0:>9,} lines/s over "
        f"{s['whole_s'] or 0:.2f} s  end to end {s['end_to_end_lines_per_s']:>9,} lines/s  "
        f"per worker {s['lines_per_worker']}  reprocessed {s['reprocessed_lines']}  "
        f"cpu {s['worker_cpu_s']}  cores in busy window {s['busy_cores']}",
        flush=True,
    )


def ingest_half(
    kafka: KafkaConnection, broker_pid: int, root: Path, opts: argparse.Namespace
) -> dict[str, Any]:
    """Produce once, run every group over it, and summarise."""
    produced = asyncio.run(produce(kafka, opts))
    print(
        f"produced {produced.lines:,} lines in {produced.messages:,} messages, "
        f"{produced.keys} keys, per partition {dict(sorted(produced.lines_per_partition.items()))}",
        flush=True,
    )
    runs = []
    for i, workers in enumerate(worker_order(opts.rounds)):
        spec = PipelineSpec(
            produced.lines, PREFIX, workers, root / f"run{i}", True, opts.partitions, opts.timeout
        )
        runs.append(asyncio.run(group_run(kafka, spec, broker_pid)))
        print_run(runs[-1], produced.lines)
    return scale_result(produced, runs, opts)


def admission_half(
    stack: embedded_stack.StackState, root: Path, opts: argparse.Namespace
) -> dict[str, Any]:
    """Reserve and settle round trips against one running worker on the same broker."""
    from loglytics.bench import admission

    worker = admission.running_worker(stack, root / "admission", opts.partitions)
    try:
        measured = asyncio.run(
            admission.measure(
                KafkaConnection(stack.kafka), opts.partitions, opts.calls, opts.warmup
            )
        )
    finally:
        worker.stop()
    summary = measured.summary()
    print(
        f"admission: {summary['admission_calls']} calls, reserve+settle p50 "
        f"{summary['admission_p50_ms']} ms, p99 {summary['admission_p99_ms']} ms "
        f"(reserve alone p50 {summary['reserve_p50_ms']} ms, p99 {summary['reserve_p99_ms']} ms)",
        flush=True,
    )
    return summary


def run(args: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print one line per group run and a final JSON line, return it."""
    parser = argparse.ArgumentParser(prog="loglytics bench scale", description=__doc__)
    parser.add_argument("--lines", type=int, default=3_000_000)
    parser.add_argument("--batch-lines", type=int, default=500, help="lines per LogBatch")
    parser.add_argument("--tenants", type=int, default=4, help="tenants (x5 sources)")
    parser.add_argument("--partitions", type=int, default=4, help="TOPIC_PARTITIONS")
    parser.add_argument("--rate", type=float, default=1000.0, help="event-time lines per second")
    parser.add_argument("--rounds", type=int, default=2, help="pairs of runs, order alternating")
    parser.add_argument("--timeout", type=float, default=1200.0, help="per group run")
    parser.add_argument("--calls", type=int, default=200, help="admission round trips (0: skip)")
    parser.add_argument("--warmup", type=int, default=20, help="admission calls not measured")
    opts = parser.parse_args(args)
    with tempfile.TemporaryDirectory(prefix="loglytics-bench-scale-") as tmp:
        root = Path(tmp)
        settings = stack_settings(root)
        stack = embedded_stack.up(settings, tied=True)
        kafka = KafkaConnection(stack.kafka)
        try:
            result = ingest_half(kafka, stack.pids["kafka"], root, opts)
            if opts.calls > 0:
                result.update(admission_half(stack, root, opts))
        finally:
            embedded_stack.down(settings)
    print(json_line(result))
    return result


if __name__ == "__main__":
    run()
