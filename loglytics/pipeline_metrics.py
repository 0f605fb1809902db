"""The pipeline's own Prometheus metrics, on the runtime's registry (one per worker).

Why here and not in each stage: the worker dashboard reads one set of names,
so they are declared once; worker.py builds `PipelineMetrics` and hands it to
the stages (their constructors and register functions), the dead-lettering and
the sink. Outputs are counted by thin wrappers around the topics a stage is
given (`CountedWindows`, `CountedFindings`), so a stage's code does not change
to be measured. Consumer lag is read from Faust's consumer by a timer.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any

import faust
import orjson
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

log = logging.getLogger(__name__)

AUTO_FORMAT = "auto"  # a LogBatch that names no format: the parser detects it
LAG_INTERVAL_SECONDS = 5.0
SEEN_FINDINGS = 10_000  # finding ids remembered, so an LLM update is not counted again


class PipelineMetrics:
    """Counters of each stage's work; every name starts with `loglytics_`."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.lines_ingested = Counter(
            "loglytics_lines_ingested",
            "Log lines received on logs.raw, by the format the batch declared",
            ["format"],
            registry=registry,
        )
        self.lines_parsed = Counter(
            "loglytics_lines_parsed",
            "Log lines parsed and windowed, by the format the batch declared",
            ["format"],
            registry=registry,
        )
        self.events_joined = Counter(
            "loglytics_events_joined",
            "Lines joined into the event before them (traces, continuations)",
            registry=registry,
        )
        self.windows_emitted = Counter(
            "loglytics_windows_emitted", "Window digests sent to logs.windows", registry=registry
        )
        self.findings = Counter(
            "loglytics_findings",
            "Findings sent to the findings topic (first send of each id)",
            ["kind", "severity"],
            registry=registry,
        )
        self.dead_letters = Counter(
            "loglytics_dead_letters",
            "Messages a stage gave up on, sent to deadletter",
            ["stage"],
            registry=registry,
        )
        self.sink_rows = Counter(
            "loglytics_clickhouse_sink_rows",
            "Rows the ClickHouse sink inserted, by table",
            ["table"],
            registry=registry,
        )
        self.sink_flush_seconds = Histogram(
            "loglytics_clickhouse_flush_seconds",
            "Seconds one batch insert into ClickHouse took",
            ["table"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=registry,
        )
        self.consumer_lag = Gauge(
            "loglytics_consumer_lag",
            "Messages of a topic this worker's assigned partitions have not read yet",
            ["topic"],
            registry=registry,
        )

    def ingested(self, fmt: str | None, lines: int) -> None:
        self.lines_ingested.labels(format=fmt or AUTO_FORMAT).inc(lines)

    def parsed(self, fmt: str | None, lines: int, events: int) -> None:
        """`lines` raw lines became `events` events (fewer when lines were joined)."""
        self.lines_parsed.labels(format=fmt or AUTO_FORMAT).inc(lines)
        if lines > events:
            self.events_joined.inc(lines - events)

    def inserted(self, table: str, rows: int, seconds: float) -> None:
        """The sink's observer: one batch written."""
        self.sink_rows.labels(table=table).inc(rows)
        self.sink_flush_seconds.labels(table=table).observe(seconds)


class CountedWindows:
    """The ingest stage's `windows_out`: the topic, with each digest counted."""

    def __init__(self, topic: Any, metrics: PipelineMetrics) -> None:
        self.topic = topic
        self.metrics = metrics

    def send_soon(self, *, key: bytes, value: bytes) -> Any:
        self.metrics.windows_emitted.inc()
        return self.topic.send_soon(key=key, value=value)


class CountedFindings:
    """The detection stage's `findings_out`: the topic, each finding counted once by id
    (the LLM's later verdict re-sends a finding under the same id)."""

    def __init__(self, topic: Any, metrics: PipelineMetrics) -> None:
        self.topic = topic
        self.metrics = metrics
        self._seen: OrderedDict[str, None] = OrderedDict()

    async def send(self, *, key: bytes, value: bytes) -> Any:
        obj = orjson.loads(value)
        finding_id = str(obj.get("finding_id", ""))
        if finding_id not in self._seen:
            self._seen[finding_id] = None
            if len(self._seen) > SEEN_FINDINGS:
                self._seen.popitem(last=False)
            labels = {"kind": str(obj.get("kind", "")), "severity": str(obj.get("severity", ""))}
            self.metrics.findings.labels(**labels).inc()
        return await self.topic.send(key=key, value=value)


def watch_lag(app: faust.App, metrics: PipelineMetrics) -> None:
    """A timer setting `loglytics_consumer_lag` from the consumer's highwater and position."""

    @app.timer(interval=LAG_INTERVAL_SECONDS, name="loglytics.metrics.lag")  # type: ignore[untyped-decorator]
    async def update_lag() -> None:
        try:
            consumer = app.consumer
            lag: dict[str, int] = {}
            for tp in consumer.assignment():
                high = consumer.highwater(tp)
                position = await consumer.position(tp)
                if high is not None and position is not None:
                    lag[tp.topic] = lag.get(tp.topic, 0) + max(0, high - position)
            for topic, behind in lag.items():
                metrics.consumer_lag.labels(topic=topic).set(behind)
        except Exception:  # a rebalance in progress: the next tick reads it again
            log.debug("consumer lag not readable now", exc_info=True)
