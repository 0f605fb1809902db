"""What a worker runs: the one list of its stages, wired from the settings.

`build_worker` builds the app, its topics, the shared runtime (LLM pool,
ClickHouse sink, tenants, quotas) and registers every stage on the app, in
dataflow order:

    logs.raw ─ ingest ─► logs.windows ─ detection ─► findings ─ sinks ─► ClickHouse
    llm.requests ─ serving ─► llm.responses        tenants ─ tenants ─► ClickHouse mirror, deletion
    quota.ops ─ ledger ─► quota.replies   (every LLM call and request, from any worker)

Nothing here runs at import: the CLI calls `build_worker` and hands the app
to Faust.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import faust

from loglytics import detection, incidents, ingest, ledger, serving, sinks, tenants, web
from loglytics.app import create_app
from loglytics.deadletters import DeadLetters
from loglytics.detection.stage import DetectionStage
from loglytics.ingest.stage import IngestStage
from loglytics.kafka_clients import KafkaConnection
from loglytics.pipeline_metrics import watch_lag
from loglytics.runtime import Runtime
from loglytics.serving.service import RequestService
from loglytics.settings import Settings
from loglytics.tenant_view import TenantView
from loglytics.topics import Topics, declare


@dataclass(frozen=True)
class Worker:
    """A wired worker: the Faust app and handles on its stages (for tools and tests)."""

    app: faust.App
    topics: Topics
    runtime: Runtime
    ingest: IngestStage
    detection: DetectionStage
    serving: RequestService


def build_worker(settings: Settings) -> Worker:
    """The app with every stage registered on it."""
    app = create_app(settings)
    topics = declare(app)
    kafka = KafkaConnection.from_settings(settings)
    budgets = ledger.RemoteLedger(
        kafka,
        partitions=app.conf.topic_partitions,
        client_id=f"{app.conf.id}-{uuid.uuid4().hex[:12]}",
    )
    runtime = Runtime(
        settings,
        tenants=TenantView(kafka, partitions=app.conf.topic_partitions),
        ledger=budgets,
        usage_topic=topics.usage,
    )
    app.service(runtime)  # type: ignore[arg-type]
    metrics = runtime.metrics  # on the registry /metrics serves
    dead_letter = DeadLetters(topics.deadletter, metrics)
    ledger.register(
        app,
        settings,
        ops=topics.quota_ops,
        replies=topics.quota_replies,
        dead_letter=dead_letter,
    )
    watch_lag(app, metrics)
    ingest_stage = ingest.register(
        app,
        settings,
        raw_logs=topics.raw_logs,
        windows=topics.windows,
        dead_letter=dead_letter,
        metrics=metrics,
    )
    detection_stage = detection.register(
        app,
        runtime,
        windows=topics.windows,
        findings=topics.findings,
        dead_letter=dead_letter,
        metrics=metrics,
    )
    incidents.register(
        app,
        runtime,
        findings=topics.findings,
        incidents=topics.incidents,
        dead_letter=dead_letter,
        feedback=topics.feedback,
    )
    sinks.register(
        app,
        runtime,
        findings=topics.findings,
        usage=topics.usage,
        dead_letter=dead_letter,
        incidents=topics.incidents,
        feedback=topics.feedback,
    )
    request_service = serving.register(
        app,
        runtime,
        requests=topics.requests,
        responses=topics.responses,
        dead_letter=dead_letter,
    )
    tenants.register(app, topics.tenants, runtime, dead_letter)
    web.register(app, runtime)
    return Worker(app, topics, runtime, ingest_stage, detection_stage, request_service)
