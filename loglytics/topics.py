"""Every topic, declared once: name, key, value, retention, compaction.

The specs are plain data, so commands and clients that only produce or read
a topic never build a Faust app; `declare` turns them into the worker's
Faust topics. Values travel as raw bytes and are decoded by the agents with
the strict codecs in `loglytics.schemas`, so that a malformed message becomes
a dead letter with a reason instead of a crash inside Faust's deserializer.
Keys are `tenant/source` (or `tenant`, or `request_id` for replies) so one
tenant's data stays ordered on one partition.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import timedelta

import faust


@dataclass(frozen=True)
class TopicSpec:
    """One topic's name, what its keys and values are, and how long Kafka keeps it."""

    name: str
    key: str
    value: str
    retention: timedelta | None = None
    compacted: bool = False


RAW_LOGS = TopicSpec(
    "logs.raw", "tenant/source", "LogBatch | LogEvent | text lines", timedelta(days=3)
)
WINDOWS = TopicSpec("logs.windows", "tenant/source", "WindowDigest", timedelta(days=7))
FINDINGS = TopicSpec("findings", "tenant", "Finding", timedelta(days=30))
INCIDENTS = TopicSpec("incidents", "tenant", "Incident", timedelta(days=30))
# People's feedback on incidents (ack, resolve, mute, unmute): the latest per key, for ever.
FEEDBACK = TopicSpec(
    "incident-feedback",
    "tenant#incident#id#action | tenant#mute#id",
    "IncidentFeedback",
    compacted=True,
)
REQUESTS = TopicSpec("llm.requests", "tenant", "LLMRequest", timedelta(days=1))
RESPONSES = TopicSpec(
    "llm.responses", "request_id", "LLMResponse | LLMStreamChunk", timedelta(days=1)
)
USAGE = TopicSpec("usage", "tenant", "UsageRecord", timedelta(days=90))
TENANTS = TopicSpec("tenants", "tenant", "TenantRecord", compacted=True)
# The quota ledger: operations to the owner of a tenant's budget, and its answers.
QUOTA_OPS = TopicSpec("quota.ops", "tenant", "LedgerOp", timedelta(days=1))
QUOTA_REPLIES = TopicSpec("quota.replies", "client id", "LedgerReply", timedelta(hours=1))
DEADLETTER = TopicSpec("deadletter", "stage", "DeadLetter", timedelta(days=30))


@dataclass(frozen=True)
class Topics:
    """The worker's Faust topics, one field per spec above (same order)."""

    raw_logs: faust.TopicT
    windows: faust.TopicT
    findings: faust.TopicT
    incidents: faust.TopicT
    feedback: faust.TopicT
    requests: faust.TopicT
    responses: faust.TopicT
    usage: faust.TopicT
    tenants: faust.TopicT
    quota_ops: faust.TopicT
    quota_replies: faust.TopicT
    deadletter: faust.TopicT


ALL_TOPICS: tuple[TopicSpec, ...] = (
    RAW_LOGS,
    WINDOWS,
    FINDINGS,
    INCIDENTS,
    FEEDBACK,
    REQUESTS,
    RESPONSES,
    USAGE,
    TENANTS,
    QUOTA_OPS,
    QUOTA_REPLIES,
    DEADLETTER,
)


def declare(app: faust.App) -> Topics:
    """The app's Faust topic for every spec, in `Topics`' field order."""

    def one(spec: TopicSpec) -> faust.TopicT:
        return app.topic(
            spec.name,
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            partitions=app.conf.topic_partitions,
            retention=spec.retention,
            compacting=spec.compacted or None,
            internal=True,
        )

    names = [f.name for f in fields(Topics)]
    assert len(names) == len(ALL_TOPICS)
    return Topics(**{name: one(spec) for name, spec in zip(names, ALL_TOPICS, strict=True)})
