"""Every topic, declared once: name, partitions, key and value types, retention.

Values travel as raw bytes and are decoded by the agents with the strict
codecs in `loglytics.schemas`, so that a malformed message becomes a dead
letter with a reason instead of a crash inside Faust's deserializer.
Keys are `tenant/source` (or `tenant`, or `request_id` for replies) so one
tenant's data stays ordered on one partition.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import faust

from loglytics.app import app


@dataclass(frozen=True)
class TopicSpec:
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
REQUESTS = TopicSpec("llm.requests", "tenant", "LLMRequest", timedelta(days=1))
RESPONSES = TopicSpec(
    "llm.responses", "request_id", "LLMResponse | LLMStreamChunk", timedelta(days=1)
)
USAGE = TopicSpec("usage", "tenant", "UsageRecord", timedelta(days=90))
TENANTS = TopicSpec("tenants", "tenant", "TenantRecord", compacted=True)
DEADLETTER = TopicSpec("deadletter", "stage", "DeadLetter", timedelta(days=30))

ALL_TOPICS: tuple[TopicSpec, ...] = (
    RAW_LOGS,
    WINDOWS,
    FINDINGS,
    REQUESTS,
    RESPONSES,
    USAGE,
    TENANTS,
    DEADLETTER,
)


def _declare(spec: TopicSpec) -> faust.TopicT:
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


raw_logs_topic = _declare(RAW_LOGS)
windows_topic = _declare(WINDOWS)
findings_topic = _declare(FINDINGS)
requests_topic = _declare(REQUESTS)
responses_topic = _declare(RESPONSES)
usage_topic = _declare(USAGE)
tenants_topic = _declare(TENANTS)
deadletter_topic = _declare(DEADLETTER)
