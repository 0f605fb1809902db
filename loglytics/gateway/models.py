"""The HTTP API's request and response bodies, field for field as the product brief has them.

Why separate from the topic protocol (`schemas.llm`): these are the brief's
public shapes (`message`, `tokens_used` as one integer, `log_entries`, ...),
documented in OpenAPI; `gateway.mapping` turns them into `LLMRequest` inputs
and `LLMResponse` replies back into them. Today's shorter names (`entries`,
`history`, `text`) stay accepted as aliases. Examples come from the brief's
use: a web client's chat and a batch of structured log entries.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, JsonValue, model_validator

from loglytics.storage.plan import Moment

MAX_ENTRIES = 10_000
MAX_TOKENS = 8192
MAX_LOOKBACK_HOURS = 24 * 90

ENTRY_EXAMPLE: dict[str, JsonValue] = {
    "level": "ERROR",
    "message": "Connection refused to db-primary:5432",
    "timestamp": "2024-06-02T08:30:11Z",
    "source": "api-gateway",
    "host": "web-7",
}


class AnalysisType(StrEnum):
    """What an analysis looks for. `/analyze` runs the type it is given; each dedicated
    route (`/detect-errors`, ...) runs its own type and refuses a different one."""

    general = "general"  # summary, issues and recommendations (POST /analyze)
    error_detection = "error_detection"  # errors with severity and cause (/detect-errors)
    root_cause = "root_cause"  # the most likely cause and fixes (/root-cause)
    anomaly_detection = "anomaly_detection"  # what deviates from normal (/detect-anomalies)
    summarization = "summarization"  # key figures and highlights (/summarize)


class Turn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["user", "assistant"]
    content: str


class LogEntry(BaseModel):
    """One log entry. Fields beyond these four are kept and sent along with the entry."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [ENTRY_EXAMPLE]})

    message: str
    level: str | None = None
    timestamp: str | None = None
    source: str | None = None


class Options(BaseModel):
    """Generation options every LLM route takes."""

    model_config = ConfigDict(extra="forbid")

    max_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS, description="reply length cap")


class ChatRequest(Options):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "message": "Why would a service log 'connection refused' every minute?",
                    "context": {"service": "api-gateway", "environment": "production"},
                    "conversation_history": [
                        {"role": "user", "content": "We see errors after the deploy."},
                        {"role": "assistant", "content": "Which service logs them?"},
                    ],
                    "max_tokens": 256,
                    "temperature": 0.7,
                }
            ]
        }
    )

    message: str = Field(min_length=1, description="the user's question")
    context: dict[str, Any] | str | None = Field(
        None, description="facts the answer may use (an object, or text)"
    )
    conversation_history: list[Turn] | None = Field(
        None,
        validation_alias=AliasChoices("conversation_history", "history"),
        description="earlier turns, oldest first (alias: history)",
    )
    temperature: float = Field(0.7, ge=0.0, le=2.0)
    structured_output: bool = Field(
        False, description="chat answers in free text: accepted, structured_data stays null"
    )


class AnalysisRequest(Options):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "log_entries": [ENTRY_EXAMPLE],
                    "prompt": "What is failing and why?",
                    "analysis_type": "general",
                    "max_tokens": 512,
                }
            ]
        }
    )

    log_entries: list[LogEntry | str] = Field(
        default_factory=list,
        max_length=MAX_ENTRIES,
        validation_alias=AliasChoices("log_entries", "entries"),
        description="the entries to analyse: objects or plain lines (alias: entries)",
    )
    text: str | None = Field(None, description="more entries as one text, a line each")
    prompt: str | None = Field(None, description="what to look for, in the caller's words")
    analysis_type: AnalysisType | None = Field(None, description="defaults to the route's own type")
    temperature: float = Field(0.3, ge=0.0, le=2.0)
    structured_output: bool = Field(
        True, description="include the validated JSON as structured_data"
    )

    def has_entries(self) -> bool:
        return bool(self.log_entries) or bool(self.text and self.text.strip())


class EntriesRequest(AnalysisRequest):
    """An analysis of given entries (analyze, detect-errors, detect-anomalies)."""

    @model_validator(mode="after")
    def _some_entries(self) -> EntriesRequest:
        needs = self.analysis_type in (None, *ENTRY_TYPES)
        if needs and not self.has_entries():
            raise ValueError("log_entries: give at least one entry (or text)")
        return self


class RootCauseRequest(AnalysisRequest):
    finding_id: str | None = Field(
        None, min_length=1, max_length=64, description="a stored finding to explain"
    )

    @model_validator(mode="after")
    def _something(self) -> RootCauseRequest:
        if self.finding_id is None and not self.has_entries():
            raise ValueError("log_entries: give entries (or text) or a finding_id")
        return self


class TimeRange(BaseModel):
    """The last N hours, or since (and until) a moment; the last 24 hours when empty."""

    model_config = ConfigDict(extra="forbid")

    last_hours: int | None = Field(None, ge=1, le=MAX_LOOKBACK_HOURS)
    since: Moment | None = None
    until: Moment | None = None

    @model_validator(mode="after")
    def _one_start(self) -> TimeRange:
        if self.last_hours is not None and self.since is not None:
            raise ValueError("last_hours: give last_hours or since, not both")
        return self

    def given(self) -> dict[str, Any]:
        return self.model_dump(
            mode="json", include={"last_hours", "since", "until"}, exclude_none=True
        )


class SummarizeRequest(AnalysisRequest, TimeRange):
    """Given entries are summarised as they are; with none, the tenant's stored data of
    the time range (default: the last 24 hours) is."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"last_hours": 6, "analysis_type": "summarization"}]}
    )


class QueryRequest(Options, TimeRange):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"question": "Which sources had critical findings?", "last_hours": 24}]
        }
    )

    question: str = Field(
        min_length=1,
        validation_alias=AliasChoices("question", "query"),
        description="a question about the tenant's stored data (alias: query)",
    )
    temperature: float = Field(0.3, ge=0.0, le=2.0)


ENTRY_TYPES = (AnalysisType.general, AnalysisType.error_detection, AnalysisType.anomaly_detection)


class ResponseMetadata(BaseModel):
    """What the reply knows beyond the brief's fields."""

    request_id: str
    task: str
    tenant: str
    provider: str = Field(description="the provider that answered ('' when no LLM call)")
    prompt_tokens: int
    completion_tokens: int
    tokens_estimated: bool = Field(description="counts estimated (the provider gave none)")
    cached: bool = Field(description="answered from the response cache")
    truncated: bool = Field(description="input or output was cut to fit")


class Reply(BaseModel):
    model_used: str
    tokens_used: int = Field(ge=0, description="prompt plus completion tokens")
    latency_ms: float
    confidence_score: float | None = Field(None, ge=0.0, le=1.0)
    metadata: ResponseMetadata


class ChatResponse(Reply):
    message: str
    structured_data: dict[str, Any] | None = None


class AnalysisResponse(Reply):
    analysis: str = Field(description="the answer as text (the model's JSON for analyses)")
    structured_data: dict[str, Any] | None = Field(
        None, description="the answer validated against the task's schema"
    )


class ErrorBody(BaseModel):
    """Every error: a message, a machine code, and for limits when to retry and the limit."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "error": "Rate limit exceeded",
                    "code": "rate_limited",
                    "retry_after": 300,
                    "limit": 1000,
                }
            ]
        }
    )

    error: str
    code: Literal[
        "invalid_credentials",
        "invalid_input",
        "payload_too_large",
        "not_found",
        "method_not_allowed",
        "unknown_task",
        "rate_limited",
        "quota_exceeded",
        "invalid_output",
        "no_provider",
        "timeout",
        "internal",
    ]
    retry_after: int | None = Field(None, ge=0, description="seconds until a retry can succeed")
    limit: int | None = Field(None, description="the limit that was reached")
    field: str | None = Field(None, description="the request field that failed validation")


class StreamChunk(BaseModel):
    """One NDJSON line of `/chat/stream` before the last: text as it is generated."""

    kind: Literal["chunk"] = "chunk"
    seq: int
    delta: str
