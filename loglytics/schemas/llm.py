"""On-demand requests and their replies (whole or streamed)."""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import Field, field_validator

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
    "usage",
]
"""The task names of the wire protocol. Declared here, below the handlers, for callers
that name tasks without importing them; `tasks.registry` declares exactly these, in
this order, and refuses to build otherwise."""
TASKS: tuple[Task, ...] = get_args(Task)

MAX_INPUT_DEPTH = 32
"""How deep a request's `input` may nest (objects and lists). Log entries and chat
context need a few levels; orjson refuses to write past 254, so a deeper input would
fail when the request or its reply is encoded — it is refused as invalid instead."""


INT_RANGE = (-(1 << 63), (1 << 64) - 1)
"""The integers orjson writes; a parser that accepts bigger ones (Python's) must not pass
them on."""


def unwritable(value: object) -> str:
    """Why orjson could not write `value` back ('' when it can): an integer beyond 64 bits
    or text with a lone surrogate (both parse from JSON escapes and digits)."""
    stack: list[object] = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, int) and not isinstance(node, bool):
            if not INT_RANGE[0] <= node <= INT_RANGE[1]:
                return "an integer does not fit 64 bits"
        elif isinstance(node, str):
            try:
                node.encode()
            except UnicodeEncodeError:
                return "text holds a lone surrogate (not valid Unicode)"
    return ""


def json_depth(value: object) -> int:
    """The nesting depth of a JSON value (a scalar is 0), walked without recursion."""
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            deepest = max(deepest, depth + 1)
            if deepest > MAX_INPUT_DEPTH:
                return deepest
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, depth + 1) for child in children)
    return deepest


class LLMRequest(Record):
    request_id: str = Field(min_length=1, max_length=128)
    tenant: str = Field(min_length=1, max_length=64)
    api_key: str = Field(max_length=256)
    task: str
    input: dict[str, Any] = Field(default_factory=dict)
    stream: bool = False
    max_tokens: int | None = Field(None, gt=0, le=8192)
    temperature: float | None = Field(None, ge=0.0, le=2.0)

    @field_validator("input", mode="before")
    @classmethod
    def _writable(cls, value: object) -> object:
        if json_depth(value) > MAX_INPUT_DEPTH:
            raise ValueError(f"nested deeper than {MAX_INPUT_DEPTH} levels")
        problem = unwritable(value)
        if problem:
            raise ValueError(problem)
        return value


class ErrorInfo(Record):
    # Machine-readable kind: invalid_credentials, unknown_task, invalid_input,
    # rate_limited, quota_exceeded, no_provider, invalid_output, internal.
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
    grounded: bool | None = None
    """False: the model's output failed the grounding check and the reply is the task's
    deterministic answer; None: no model output was checked (the gateway's metadata)."""
    error: ErrorInfo | None = None
    final: bool = True
    kind: Literal["response"] = "response"


class LLMStreamChunk(Record):
    """One piece of a streamed reply; `seq` orders them, the final LLMResponse ends them."""

    request_id: str
    seq: int
    delta: str
    kind: Literal["chunk"] = "chunk"
