"""Message models (pydantic v2, strict) and their orjson codecs, one module per topic family."""

from loglytics.schemas.base import SCHEMA_VERSION, DecodeError, EpochSeconds, Record
from loglytics.schemas.deadletter import DeadLetter
from loglytics.schemas.feedback import (
    MAX_MUTE_SECONDS,
    MUTE_REASONS,
    FeedbackAction,
    IncidentFeedback,
    Mute,
    MuteReason,
    mute_id,
)
from loglytics.schemas.findings import (
    SEVERITIES,
    Evidence,
    Finding,
    Severity,
    Signal,
    SignalKind,
    finding_id,
)
from loglytics.schemas.incidents import (
    Incident,
    IncidentEvent,
    IncidentStatus,
    ResolvedBy,
    incident_id,
)
from loglytics.schemas.ledger import LedgerOp, LedgerReply, LedgerStatus
from loglytics.schemas.llm import (
    TASKS,
    ErrorInfo,
    LLMRequest,
    LLMResponse,
    LLMStreamChunk,
    TokenUsage,
)
from loglytics.schemas.logs import BatchEvent, LogBatch, LogEvent
from loglytics.schemas.tenants import TenantRecord, hash_api_key, new_api_key
from loglytics.schemas.usage import UsageRecord
from loglytics.schemas.windows import NumericStats, TemplateCount, WindowDigest

__all__ = [
    "MAX_MUTE_SECONDS",
    "MUTE_REASONS",
    "SCHEMA_VERSION",
    "SEVERITIES",
    "TASKS",
    "BatchEvent",
    "DeadLetter",
    "DecodeError",
    "EpochSeconds",
    "ErrorInfo",
    "Evidence",
    "FeedbackAction",
    "Finding",
    "Incident",
    "IncidentEvent",
    "IncidentFeedback",
    "IncidentStatus",
    "LLMRequest",
    "LLMResponse",
    "LLMStreamChunk",
    "LedgerOp",
    "LedgerReply",
    "LedgerStatus",
    "LogBatch",
    "LogEvent",
    "Mute",
    "MuteReason",
    "NumericStats",
    "Record",
    "ResolvedBy",
    "Severity",
    "Signal",
    "SignalKind",
    "TemplateCount",
    "TenantRecord",
    "TokenUsage",
    "UsageRecord",
    "WindowDigest",
    "finding_id",
    "hash_api_key",
    "incident_id",
    "mute_id",
    "new_api_key",
]
