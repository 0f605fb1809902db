"""`loglytics demo`: the main job, live, on a private embedded stack.

Starts the embedded stack and a worker, registers a free-tier and a pro-tier
tenant, streams realistic multi-service traffic in several formats with
incidents injected on a schedule (a database outage, a latency spike, a new
exception after a deploy, a slow memory leak), sends a few malformed
messages, shows findings as they arrive, and ends with a summary that checks
every incident was found within two window lengths and that ClickHouse holds
exactly the findings that went to the topic.

Incidents: the live view shows them above the findings stream, and the
summary says which incident caught each injected one, how many it opened,
how many opened for nothing injected, and how many resolved. The injected
causes stop before the traffic does, and the demo waits after it for the
worker to resolve what went quiet (INCIDENT_RESOLVE_WINDOWS windows). When
`prometheus-alertmanager` is on the PATH the worker delivers to a private one,
and the summary counts the incidents that reached it.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from loglytics.commands import demo_incidents as board
from loglytics.commands.findings import SEVERITY_STYLE
from loglytics.embedded import stack as embedded_stack
from loglytics.embedded.alertmanager import AlertmanagerProcess, find_binary
from loglytics.embedded.gateway import GatewayProcess
from loglytics.embedded.worker import WorkerProcess
from loglytics.kafka_admin import consumer_lag, ensure_topics
from loglytics.kafka_clients import KafkaConnection
from loglytics.schemas import (
    DecodeError,
    Finding,
    Incident,
    LogBatch,
    TenantRecord,
    UsageRecord,
)
from loglytics.schemas.tenants import hash_api_key, new_api_key
from loglytics.settings import Tier
from loglytics.storage.client import open_client
from loglytics.storage.queries import count_findings
from loglytics.synthetic import Incident as Injected
from loglytics.synthetic import Scenario, demo_scenario

TICK = 0.5
# The last line is this far before the window boundary the traffic ends on (stamps are ms).
LAST_LINE_MARGIN_S = 0.01
# After the incidents resolved: how long to wait for Alertmanager to hear it.
ALERTS_SETTLE_S = 15.0
TIERS: dict[str, Tier] = {"acme": "free", "globex": "pro"}
MALFORMED: list[tuple[bytes | None, bytes]] = [
    (b"acme/web", b'{"tenant": "acme", "source": "web", "lines": "not a list"'),
    (b"acme/web", b'{"tenant": 42, "source": "web", "lines": ["x"]}'),
    (None, b"a plain line with no tenant header"),
]


@dataclass
class DemoState:
    lines: int = 0
    windows: int = 0
    window_lines: int = 0
    findings: dict[str, Finding] = field(default_factory=dict)
    incidents: dict[str, Incident] = field(default_factory=dict)
    tokens: Counter[str] = field(default_factory=Counter)
    deadletters: int = 0
    started: float = field(default_factory=time.time)


def _incident_finding(incident: Injected, start_wall: float, state: DemoState) -> Finding | None:
    """The first finding for the incident's tenant/source about a window overlapping it.

    A model verdict arrives as an update of the same finding and keeps its
    `created_at`, so that is when the incident was found.
    """
    begin = start_wall + incident.start
    matches = [
        f
        for f in state.findings.values()
        if f.tenant == incident.tenant
        and f.source == incident.source
        and f.window_end > begin
        and f.window_start < start_wall + incident.end
    ]
    return min(matches, key=lambda f: f.created_at, default=None)


def _view(state: DemoState, progress: Progress, scenario: Scenario, start_wall: float) -> Group:
    now = time.time()
    table = Table(title="findings (latest first)", expand=True, show_lines=False)
    for col in ("time", "severity", "tenant/source", "kind", "title", "model", "tokens"):
        table.add_column(col, overflow="ellipsis", no_wrap=True)
    for f in sorted(state.findings.values(), key=lambda f: -f.created_at)[:14]:
        table.add_row(
            time.strftime("%H:%M:%S", time.localtime(f.window_start)),
            f"[{SEVERITY_STYLE[f.severity]}]{f.severity}[/]",
            f"{f.tenant}/{f.source}",
            f"{f.kind}/{f.category}",
            f.title[:70],
            f.model_used,
            str(f.tokens_used),
        )
    incidents = Table(title="injected incidents", expand=True)
    for col in ("incident", "where", "starts", "found"):
        incidents.add_column(col)
    for inc in scenario.incidents:
        found = _incident_finding(inc, start_wall, state)
        begin = start_wall + inc.start
        status = (
            f"[green]after {found.created_at - begin:.0f}s[/]"
            if found
            else ("[dim]not yet started[/]" if now < begin else "[yellow]watching[/]")
        )
        incidents.add_row(inc.name, f"{inc.tenant}/{inc.source}", f"+{inc.start:.0f}s", status)
    live = board.incidents_table(state.incidents.values(), now)
    return Group(progress, incidents, live, table)


async def _consume(kafka: KafkaConnection, state: DemoState, stop: asyncio.Event) -> None:
    consumer = kafka.consumer(
        "findings",
        "incidents",
        "usage",
        "logs.windows",
        "deadletter",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=300, max_records=5000)
            for tp, records in batch.items():
                for rec in records:
                    if not rec.value:
                        continue
                    if tp.topic == "findings":
                        try:
                            f = Finding.from_bytes(rec.value)
                        except DecodeError:
                            continue
                        state.findings[f.finding_id] = f
                    elif tp.topic == "incidents":
                        try:
                            board.keep_latest(state.incidents, Incident.from_bytes(rec.value))
                        except DecodeError:
                            continue
                    elif tp.topic == "usage":
                        try:
                            u = UsageRecord.from_bytes(rec.value)
                        except DecodeError:
                            continue
                        state.tokens[u.tenant] += u.prompt_tokens + u.completion_tokens
                    elif tp.topic == "logs.windows":
                        state.windows += 1
                        state.window_lines += int(orjson.loads(rec.value).get("line_count", 0))
                    else:
                        state.deadletters += 1
    finally:
        await consumer.stop()


async def _register_tenants(producer: AIOKafkaProducer) -> dict[str, str]:
    keys = {}
    for tenant, tier in TIERS.items():
        key = new_api_key()
        keys[tenant] = key
        record = TenantRecord(
            tenant=tenant, tier=tier, api_key_hashes=[hash_api_key(key)], updated_at=time.time()
        )
        await producer.send_and_wait("tenants", value=record.to_bytes(), key=tenant.encode())
    return keys


async def _traffic(
    producer: AIOKafkaProducer,
    scenario: Scenario,
    state: DemoState,
    duration: float,
    start_wall: float,
    progress: Progress,
    task: Any,
    window: float,
) -> None:
    """Every service's lines, continuously, until the end of the window `duration` ends in.

    Why to a window's end: lines stopping mid-window would leave a last, partial
    window that really is a drop in volume (and a few-line sample of every
    value), findings about the demo's end rather than about anything injected.
    """
    end_wall = math.ceil((start_wall + duration) / window) * window - LAST_LINE_MARGIN_S
    covered = time.time() - TICK  # lines are written up to this instant
    sent_bad = False
    while covered < end_wall:
        tick_start = time.monotonic()
        now = min(time.time(), end_wall)
        elapsed = now - start_wall
        for (tenant, source), lines in scenario.tick(elapsed, now, now - covered).items():
            batch = LogBatch(tenant=tenant, source=source, lines=lines)
            await producer.send(
                "logs.raw", value=batch.to_bytes(), key=f"{tenant}/{source}".encode()
            )
            state.lines += len(lines)
        covered = now
        if not sent_bad and elapsed >= duration / 3:
            for key, value in MALFORMED:
                await producer.send("logs.raw", value=value, key=key)
            sent_bad = True
        progress.update(task, completed=min(elapsed, duration))
        await asyncio.sleep(max(0.0, TICK - (time.monotonic() - tick_start)))
    await producer.flush()


async def _drain(
    kafka: KafkaConnection, group: str, partitions: int, timeout: float, state: DemoState
) -> bool:
    """Wait until every line is in a closed window and the worker committed everything."""
    deadline = time.monotonic() + timeout
    topics = ("logs.raw", "logs.windows", "findings", "usage", "tenants")
    quiet = 0
    while time.monotonic() < deadline:
        lag = await consumer_lag(kafka, group, topics, partitions)
        quiet = quiet + 1 if lag == 0 and state.window_lines >= state.lines else 0
        if quiet >= 3:
            return True
        await asyncio.sleep(1.0)
    return False


async def _run_demo(opts: argparse.Namespace, console: Console) -> dict[str, Any]:
    window = float(opts.window_seconds)
    workdir = Path(tempfile.mkdtemp(prefix="loglytics-demo-"))
    settings = embedded_stack.private_settings(workdir)
    resolve_windows = settings.incident_resolve_windows
    scenario = demo_scenario(opts.duration, window, quiet_windows=resolve_windows)
    state = DemoState()
    if not opts.json:
        console.print(f"[bold]loglytics demo[/]: starting the embedded stack in {workdir}")
    stack_state = embedded_stack.up(settings, tied=True)
    alertmanager = _alertmanager(workdir)
    worker = WorkerProcess(
        stack_state,
        workdir,
        window_seconds=window,
        # Each source's lines arrive in order (one producer, keyed by source), so the
        # lateness only has to cover a traffic tick; every finding waits for it.
        allowed_lateness_seconds=0.5,
        window_idle_close_seconds=3,
        incident_resolve_windows=resolve_windows,
        alertmanager_url=alertmanager.url if alertmanager else "",
    )
    watch = board.AlertWatch(alertmanager) if alertmanager else None
    gateway = GatewayProcess(stack_state, workdir)
    try:
        # The demo's own embedded broker: plaintext on loopback.
        await ensure_topics(KafkaConnection(stack_state.kafka), settings.topic_partitions)
        worker.start(timeout=90)
        gateway.start()
        if not opts.json:
            console.print(
                f"HTTP API (loglytics api): {gateway.base}, docs {gateway.base}/docs; "
                f"try `loglytics check {gateway.base} --api-key <acme's key, printed below>`"
            )
            console.print(
                f"worker ready (app {worker.app_id}, web http://127.0.0.1:{worker.web_port}); "
                f"tenants: acme (free), globex (pro); window {window:.0f}s; "
                f"alertmanager: {alertmanager.url if alertmanager else 'not installed'}"
            )
        run = _Run(scenario, state, worker, settings.topic_partitions, window, resolve_windows)
        drained = await _stream(opts, console, stack_state, run, watch)
    finally:
        gateway.stop()
        worker.stop()
        if alertmanager:
            alertmanager.stop()
        embedded_stack.down(settings)
    client = open_client(f"chdb://{workdir / 'clickhouse'}")
    try:
        in_clickhouse = count_findings(client)
    finally:
        client.close()
    return {
        "lines": state.lines,
        "windows": state.windows,
        "findings": len(state.findings),
        "findings_by_severity": dict(Counter(f.severity for f in state.findings.values())),
        "findings_in_clickhouse": in_clickhouse,
        "tokens_by_tenant": dict(state.tokens),
        "deadletters": state.deadletters,
        "incidents": _incident_summary(scenario, state, window),
        **board.incident_totals(scenario.incidents, state.incidents, state.started, window),
        "copied_from_prompt_example": board.copied_from_example(
            state.findings, state.incidents.values()
        ),
        "alertmanager": watch.summary(state.incidents) if watch else None,
        "drained": drained,
        "window_seconds": window,
        "incident_resolve_windows": resolve_windows,
        "duration_s": opts.duration,
    }


def _alertmanager(workdir: Path) -> AlertmanagerProcess | None:
    """A private Alertmanager when one is installed (else the demo runs without)."""
    binary = find_binary()
    if binary is None:
        return None
    alertmanager = AlertmanagerProcess(binary, workdir / "alertmanager")
    alertmanager.start()
    return alertmanager


@dataclass(frozen=True)
class _Run:
    """What the streaming phase works on."""

    scenario: Scenario
    state: DemoState
    worker: WorkerProcess
    partitions: int
    window: float
    resolve_windows: int

    @property
    def resolve_timeout_s(self) -> float:
        """Long enough for the worker's quiet timer to resolve the last incident (K windows
        and a half after its last finding, ticking at a quarter window), with slack."""
        return (self.resolve_windows + 2) * self.window + 30.0


async def _stream(
    opts: argparse.Namespace,
    console: Console,
    stack_state: embedded_stack.StackState,
    run: _Run,
    watch: board.AlertWatch | None,
) -> bool:
    """Produce the scenario's traffic under the live view, wait for the worker to drain,
    then for the incidents to resolve."""
    scenario, state = run.scenario, run.state
    progress = Progress(
        TextColumn("[bold]traffic"),
        BarColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[stats]}"),
    )
    task = progress.add_task("traffic", total=opts.duration, stats="")
    kafka = KafkaConnection(stack_state.kafka)  # the demo's own embedded broker
    producer = kafka.producer(linger_ms=5)
    await producer.start()
    stop = asyncio.Event()
    consumer = asyncio.create_task(_consume(kafka, state, stop))
    watcher = asyncio.create_task(watch.watch(stop)) if watch else None
    try:
        keys = await _register_tenants(producer)
        if not opts.json:
            console.print(f"acme's API key: {keys['acme']}")
        start_wall = time.time()
        state.started = start_wall
        traffic = asyncio.create_task(
            _traffic(
                producer, scenario, state, opts.duration, start_wall, progress, task, run.window
            )
        )
        live_view = Live(
            _view(state, progress, scenario, start_wall),
            console=console,
            refresh_per_second=2,
            transient=False,
        )
        with live_view if not opts.json else _Null() as live:

            def refresh() -> None:
                progress.update(
                    task,
                    stats=f"{state.lines} lines  {state.windows} windows  "
                    f"{len(state.findings)} findings  {len(state.incidents)} incidents",
                )
                live.update(_view(state, progress, scenario, start_wall))

            while not traffic.done():
                await asyncio.sleep(0.5)
                refresh()
            await traffic
            drained = await _drain(kafka, run.worker.app_id, run.partitions, 120, state)
            deadline = time.monotonic() + run.resolve_timeout_s
            while not board.all_resolved(state.incidents) and time.monotonic() < deadline:
                await asyncio.sleep(0.5)
                refresh()
            settle = time.monotonic() + ALERTS_SETTLE_S
            while watch and watch.active_now and time.monotonic() < settle:
                await asyncio.sleep(0.5)
            await asyncio.sleep(1.0)
            refresh()
    finally:
        stop.set()
        await consumer
        if watcher:
            await watcher
        await producer.stop()
    return drained


def _incident_summary(
    scenario: Scenario, state: DemoState, window: float
) -> dict[str, dict[str, Any]]:
    """For each injected incident: when its finding first appeared, and where the time went."""
    incidents = {}
    for inc in scenario.incidents:
        found = _incident_finding(inc, state.started, state)
        after = found.created_at - (state.started + inc.start) if found else None
        opened = board.opened_for(inc, state.incidents.values(), state.started, window)
        caught = board.caught_by(found, opened, state.incidents.values())
        incidents[inc.name] = {
            "tenant": inc.tenant,
            "source": inc.source,
            "found_after_s": round(after, 1) if after is not None else None,
            "within_two_windows": after is not None and after <= 2 * window,
            # Where the time went: the incident's position in its first window, and the
            # pipeline's delay from the end of the window that showed it to the finding.
            "started_into_window_s": round((state.started + inc.start) % window, 1),
            "after_window_end_s": round(found.created_at - found.window_end, 1) if found else None,
            "incident_id": caught.incident_id if caught else None,
            "incidents_for_it": len(opened),
        }
    return incidents


class _Null:
    """Stands in for rich's Live when the output is JSON only."""

    def __enter__(self) -> _Null:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, renderable: object) -> None:
        del renderable


def run(args: argparse.Namespace) -> int:
    console = Console(stderr=args.json)
    try:
        summary = asyncio.run(_run_demo(args, console))
    except KeyboardInterrupt:
        console.print("interrupted: the stack and the worker were stopped")
        return 130
    if args.json:
        sys.stdout.write(orjson.dumps(summary).decode() + "\n")
    else:
        console.rule("summary")
        console.print(
            f"lines {summary['lines']}, windows {summary['windows']}, "
            f"findings {summary['findings']} (ClickHouse: {summary['findings_in_clickhouse']}), "
            f"dead letters {summary['deadletters']}"
        )
        console.print(f"findings by severity: {summary['findings_by_severity']}")
        console.print(f"LLM tokens by tenant: {summary['tokens_by_tenant']}")
        console.print(
            f"incidents: {summary['incidents_opened']} opened, "
            f"{summary['incidents_resolved']} resolved, "
            f"{summary['unmatched_incidents']} matching nothing injected; "
            f"alertmanager: {summary['alertmanager']}"
        )
        for name, inc in summary["incidents"].items():
            mark = "[green]found[/]" if inc["within_two_windows"] else "[red]MISSED[/]"
            console.print(
                f"  {name:14s} {inc['tenant']}/{inc['source']:11s} {mark} "
                f"after {inc['found_after_s']}s (started {inc['started_into_window_s']}s into a "
                f"window; finding {inc['after_window_end_s']}s after its window's end; "
                f"incident {inc['incident_id']}, {inc['incidents_for_it']} opened for it)"
            )
    injected = summary["incidents"].values()
    ok = (
        summary["findings"] == summary["findings_in_clickhouse"]
        and all(i["within_two_windows"] and i["incidents_for_it"] == 1 for i in injected)
        and summary["unmatched_incidents"] == 0
        and summary["incidents_resolved"] == summary["incidents_opened"]
        and not any(summary["copied_from_prompt_example"].values())
    )
    return 0 if ok else 1
