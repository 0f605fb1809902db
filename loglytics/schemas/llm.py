"""On-demand requests and their replies (whole or streamed)."""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import Field

from loglytics.schemas.base import Record

Task = Literal[
    "chat",
    "analyze",
    "detect-errors",
    "root-cause",
    "detect-anomalies",
    "query",
    "summarize",
    "models",
    "health",
]
"""The task names of the wire protocol. Declared here, below the handlers, for callers
that name tasks without importing them; `tasks.registry` declares exactly these, in
this order, and refuses to build otherwise."""
TASKS: tuple[Task, ...] = get_args(Task)


class LLMRequest(Record):
    request_id: str = Field(min_length=1, max_length=128)
    tenant: str = Field(min_length=1, max_length=64)
    api_key: str = Field(max_length=256)
    task: str
    input: dict[str, Any] = Field(default_factory=dict)
    stream: bool = False
    max_tokens: int | None = Field(None, gt=0, le=8192)
    temperature: float | None = Field(None, ge=0.0, le=2.0)


class ErrorInfo(Record):
    # Machine-readable kind: invalid_credentials, unknown_task, invalid_input,
    # quota_exceeded, no_provider, invalid_output, internal.
    error: str
    message: str
    retry_after: float | None = None
    limit: int | None = None


class TokenUsage(Record):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    estimated: bool = False

    @property
    def total(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class LLMResponse(Record):
    request_id: str
    tenant: str
    task: str
    ok: bool = True
    text: str = ""
    data: dict[str, Any] | None = None
    model_used: str = ""
    provider: str = ""
    tokens_used: TokenUsage = Field(default_factory=TokenUsage)
    latency_ms: float = 0.0
    confidence_score: float | None = None
    truncated: bool = False
    cached: bool = False
    error: ErrorInfo | None = None
    final: bool = True
    kind: Literal["response"] = "response"


class LLMStreamChunk(Record):
    """One piece of a streamed reply; `seq` orders them, the final LLMResponse ends them."""

    request_id: str
    seq: int
    delta: str
    kind: Literal["chunk"] = "chunk"
