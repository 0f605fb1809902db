"""The ingest bench's pipeline run: real worker processes, timed from outside.

Three times are taken, because they answer different questions:

- **absorb**: the steady rate at which the workers take lines in, from their
  own counter (``loglytics_lines_parsed_total`` on each worker's ``/metrics``,
  polled): lines counted between the first and the last reading that moved,
  over the time between them. A worker answers ``/metrics`` between ingest
  batches, so the first reading already holds one batch; counting from it
  (not from zero) keeps that batch out of the rate rather than compressing it
  into no time. This is what ``ratio`` compares with the bare consumer.
- **close latency**: from the last line absorbed to the digests on
  ``logs.windows`` accounting for every line: mostly the idle close of each
  source's last window (``WINDOW_IDLE_CLOSE_SECONDS``), which no pipeline
  speed shortens.
- **end to end**: from the first worker's "Worker ready" to that same moment,
  the figure the bench always reported.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from loglytics.embedded.ports import free_port
from loglytics.embedded.processes import alive, spawn, stop_pid
from loglytics.kafka_clients import KafkaConnection
from loglytics.topics import WINDOWS

READY_MARK: Final = b"Worker ready"
# The worker's idle close in the bench. A source's last window has no later line to push
# the watermark past it, so only this timer closes it.
IDLE_CLOSE_SECONDS: Final = 1.0
# The bench measures ingest only: a local LLM server would take one of the cores
# away from the worker, so the private stack gets an address that is never called.
UNUSED_LLM_URL: Final = "http://127.0.0.1:9"
PARSED_METRIC: Final = "loglytics_lines_parsed_total"
PROBE_INTERVAL_S: Final = 0.01


@dataclass
class PipelineRun:
    seconds: float
    """End to end: first worker ready -> every line in a digest."""
    absorb_s: float | None
    """Between the first and the last reading of the parsed-lines counter that moved."""
    absorbed_lines: int
    """Lines counted over ``absorb_s``."""
    close_latency_s: float | None
    """Last line absorbed -> every line in a digest."""
    lines_seen: int
    windows: int
    ready_spread_s: float
    peak_rss_mb: list[float]
    deadletters: int
    worker_cpu_s: list[float]
    """Each worker's CPU time over its whole life (start-up, restore and the idle close too)."""


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a live process has used, in seconds; 0 when unreadable.

    On shared cores the wall-clock rates move with everyone else's load; the
    worker's own CPU time per line does not, which makes it the figure to
    compare two versions of the code by.
    """
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def vm_hwm_mb(pid: int) -> float:
    """Peak resident set size of a live process (VmHWM), in MiB; 0 when unreadable."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


async def end_offsets(kafka: KafkaConnection, topic: str) -> dict[int, int]:
    consumer = kafka.consumer(enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer.topics()  # refreshes the metadata of every topic
        parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        ends = await consumer.end_offsets(tps) if tps else {}
        return {tp.partition: off for tp, off in ends.items()}
    finally:
        await consumer.stop()


def parsed_lines(metrics_text: str) -> float:
    """The sum of ``loglytics_lines_parsed_total`` over its labels in a /metrics page."""
    total = 0.0
    for line in metrics_text.splitlines():
        if line.startswith(PARSED_METRIC):
            with contextlib.suppress(ValueError, IndexError):
                total += float(line.rsplit(" ", 1)[1])
    return total


class AbsorbProbe:
    """Polls the workers' parsed-lines counters; remembers when they moved first and last."""

    def __init__(self, ports: list[int], target: int) -> None:
        self.urls = [f"http://127.0.0.1:{port}/metrics" for port in ports]
        self.target = target
        self.first: tuple[float, float] | None = None
        """(time, lines) of the first reading above zero."""
        self.last: tuple[float, float] | None = None
        """(time, lines) of the first reading at the target."""

    async def run(self) -> None:
        """Poll until the counters reach the target (cancel it to stop earlier)."""
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while self.last is None:
                total = 0.0
                for url in self.urls:
                    with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError, OSError):
                        async with session.get(url) as response:
                            total += parsed_lines(await response.text())
                now = time.perf_counter()
                if total > 0 and self.first is None:
                    self.first = (now, total)
                if total >= self.target:
                    self.last = (now, total)
                await asyncio.sleep(PROBE_INTERVAL_S)

    def span(self) -> tuple[float, int] | None:
        """(seconds, lines) between the first and last readings, when both moved."""
        if self.first is None or self.last is None or self.last[0] <= self.first[0]:
            return None
        return self.last[0] - self.first[0], int(self.last[1] - self.first[1])


def worker_env(
    bootstrap: str, app_id: str, workdir: Path, embedded: bool, partitions: int, web_port: int
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "OLLAMA_", "VLLM_"))}
    env.update(
        KAFKA_BOOTSTRAP_SERVERS=bootstrap,
        KAFKA_EMBEDDED="true" if embedded else "false",
        LLAMACPP_BASE_URL=UNUSED_LLM_URL,
        APP_ID=app_id,
        WEB_PORT=str(web_port),
        STATE_DIR=str(workdir / "state"),
        CLICKHOUSE_DSN=f"chdb://{workdir / 'clickhouse'}",
        WINDOW_SECONDS="60",
        WINDOW_IDLE_CLOSE_SECONDS=str(IDLE_CLOSE_SECONDS),
        TOPIC_PARTITIONS=str(partitions),
        LOG_LEVEL="INFO",
    )
    return env


@dataclass(frozen=True)
class PipelineSpec:
    """What the pipeline run needs to know about the produced data and the workers."""

    lines: int
    prefix: str
    """Tenants of this run start with it (older data on a shared broker does not)."""
    workers: int
    workdir: Path
    embedded: bool
    partitions: int
    timeout: float


async def pipeline(
    kafka: KafkaConnection,
    spec: PipelineSpec,
    probe_factory: Callable[[list[int], int], AbsorbProbe] = AbsorbProbe,
) -> PipelineRun:
    """Run worker processes until logs.windows accounts for every produced line.

    ``probe_factory(ports, lines)`` builds the counter probe: `bench scale` passes one that
    also keeps each worker's readings, to find when all of them were busy.
    """
    app_id = f"bench{uuid.uuid4().hex[:10]}"
    watcher = kafka.consumer(WINDOWS.name, enable_auto_commit=False, auto_offset_reset="latest")
    await watcher.start()
    procs: list[subprocess.Popen[bytes]] = []
    logs: list[Path] = []
    ports = [free_port() for _ in range(spec.workers)]
    probe = probe_factory(ports, spec.lines)
    probing = None
    try:
        await watcher.seek_to_end()
        for i in range(spec.workers):
            wdir = spec.workdir / f"worker{i}"
            wdir.mkdir(parents=True, exist_ok=True)
            logs.append(wdir / "worker.log")
            env = worker_env(
                kafka.bootstrap, app_id, wdir, spec.embedded, spec.partitions, ports[i]
            )
            procs.append(
                spawn([sys.executable, "-m", "loglytics", "worker"], logs[-1], tied=True, env=env)
            )
        probing = asyncio.create_task(probe.run())
        ready, counts = await _until_windowed(watcher, procs, logs, spec)
        done = time.perf_counter()
        rss = [vm_hwm_mb(p.pid) for p in procs]
        cpu = [cpu_seconds(p.pid) for p in procs]
    finally:
        if probing is not None:
            probing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await probing
        await watcher.stop()
        for proc in procs:
            if alive(proc.pid):
                stop_pid(proc.pid, timeout=15)
    letters = sum((await end_offsets(kafka, "deadletter")).values())
    first = min(ready.values()) if ready else done
    span = probe.span()
    return PipelineRun(
        seconds=done - first,
        absorb_s=span[0] if span else None,
        absorbed_lines=span[1] if span else 0,
        close_latency_s=done - probe.last[0] if probe.last is not None else None,
        lines_seen=sum(counts.values()),
        windows=len(counts),
        ready_spread_s=(max(ready.values()) - first) if ready else 0.0,
        peak_rss_mb=rss,
        deadletters=letters,
        worker_cpu_s=cpu,
    )


async def _until_windowed(
    watcher: AIOKafkaConsumer,
    procs: list[subprocess.Popen[bytes]],
    logs: list[Path],
    spec: PipelineSpec,
) -> tuple[dict[int, float], dict[tuple[str, str, float], int]]:
    """Wait for the digests to account for every line; (ready time per worker, line counts)."""
    ready: dict[int, float] = {}
    counts: dict[tuple[str, str, float], int] = {}
    deadline = time.monotonic() + spec.timeout
    total = 0
    while total < spec.lines:
        if time.monotonic() > deadline:
            raise TimeoutError(f"pipeline saw {total} of {spec.lines} lines in {spec.timeout}s")
        for i, proc in enumerate(procs):
            if proc.poll() is not None:
                text = logs[i].read_text(errors="replace")
                at = max(0, text.find("Traceback"))
                code = proc.returncode
                raise RuntimeError(f"worker {i} exited with {code}:\n{text[at : at + 4000]}")
            if i not in ready and READY_MARK in logs[i].read_bytes():
                ready[i] = time.perf_counter()
        batch = await watcher.getmany(timeout_ms=50)
        for records in batch.values():
            for record in records:
                digest = orjson.loads(record.value)
                if not str(digest.get("tenant", "")).startswith(spec.prefix):
                    continue
                key = (digest["tenant"], digest["source"], digest["window_start"])
                counts[key] = digest["line_count"]  # a re-emitted window replaces itself
        total = sum(counts.values())
    return ready, counts
