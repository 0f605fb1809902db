"""What every task handler gets and returns, and the one way handlers call the LLM.

Handlers are plain async functions of a `TaskContext`: no Faust, no Kafka, so
they run the same under the request agent and in a unit test. The context
carries the authenticated tenant and its tier (looked up per request, so a tier
change applies to the next call), the pool, a storage handle, and — when the
caller asked for a stream — where to send text deltas.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from loglytics.prompts.base import FewShot, Message, PromptSpec
from loglytics.prompts.grounding import GroundingMetrics
from loglytics.providers import LLMPool, PoolResult, StreamDelta, json_schema_for
from loglytics.providers.tokens import add_usage, estimate_messages, estimate_tokens
from loglytics.schemas import LLMRequest, TokenUsage
from loglytics.settings import Tier
from loglytics.storage.client import Client

T = TypeVar("T")
InputT = TypeVar("InputT", bound=BaseModel)

MODEL_CONTEXT_TOKENS = 4096
"""The smallest context among the product's providers (an embedded llama.cpp slot)."""

INPUT_CHARS_PER_TOKEN = 2
"""Log text (timestamps, ids, addresses) tokenizes densely: ~2 characters per token,
not the ~4 of prose, so budgets assume 2 to stay inside the context."""

JSON_CHARS_PER_TOKEN = 3
"""Generated JSON (keys, punctuation, short words) runs ~3 characters per token."""

CONTEXT_MARGIN_TOKENS = 64

DeltaSink = Callable[[str], Awaitable[None]]


class TaskError(Exception):
    """A request the task cannot serve; `error` is the ErrorInfo kind sent back."""

    def __init__(self, error: str, message: str) -> None:
        super().__init__(message)
        self.error = error
        self.message = message


def invalid_input(message: str) -> TaskError:
    return TaskError("invalid_input", message)


def parse_input(model: type[InputT], raw: dict[str, Any]) -> InputT:
    """The request's `input` as the task's input model, or `invalid_input` saying why."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        parts = []
        for err in exc.errors()[:3]:
            loc = ".".join(str(p) for p in err["loc"]) or "input"
            parts.append(f"{loc}: {err['msg']}")
        raise invalid_input("; ".join(parts)) from None


class Storage(Protocol):
    """ClickHouse as handlers see it: blocking reads run off the event loop."""

    async def run(self, fn: Callable[[Client], T]) -> T: ...

    def status(self) -> dict[str, Any]: ...


@dataclass
class TaskResult:
    """What a handler produced; the agent adds ids, timing and usage to make the reply."""

    text: str
    data: dict[str, Any] | None = None
    confidence: float | None = None
    truncated: bool = False
    grounded: bool | None = None
    """False when a model's output failed the grounding check twice and the reply is the
    task's deterministic answer; None when no model output was checked."""


ExampleMode = Literal["static", "shaped", "none"]
"""Which few-shot examples a task shows: its spec's own, one built from the request's
shape (placeholder content), or none."""


@dataclass
class TaskContext:
    """`grounding` counts grounding outcomes (None: not counted); `examples` picks the
    few-shot mode (the bench compares them)."""

    request: LLMRequest
    tier: Tier
    pool: LLMPool
    storage: Storage
    on_delta: DeltaSink | None = None
    calls: list[PoolResult] = field(default_factory=list)
    streamed: bool = False
    grounding: GroundingMetrics | None = None
    examples: ExampleMode = "shaped"
    # LLM calls begun so far: the n-th call's ledger id is "<request id>:<n>", the same
    # when the request is processed again after a crash, so it is charged once.
    calls_begun: int = 0

    @property
    def tenant(self) -> str:
        return self.request.tenant

    @property
    def input(self) -> dict[str, Any]:
        return self.request.input

    def max_tokens(self, spec: PromptSpec) -> int:
        """The request's `max_tokens`, else the spec's; raised to the JSON floor if needed.

        A structured reply cut off at `max_tokens` cannot be parsed: the pool
        then pays for a repair round that is cut off the same way. So a limit
        below the longest reply the task's bounded schema allows is raised to
        it (`reply_floor`); the tenant is charged for tokens used, not reserved.
        """
        limit = self.request.max_tokens or spec.max_tokens
        if spec.output is not None:
            limit = max(limit, reply_floor(spec.output))
        return limit

    def input_budget(self, spec: PromptSpec, max_tokens: int) -> int:
        """Characters of user input that fit the context next to the prompt and the reply.

        Room is kept for a repair round (the bad reply, the schema and a second
        answer), since the pool retries an invalid structured reply once.
        """
        fixed = estimate_messages(spec.messages(""))
        reserve = max_tokens
        if spec.output is not None:
            schema_chars = len(str(json_schema_for(spec.output)))
            reserve += max_tokens + estimate_tokens("x" * schema_chars) * 2
        tokens = MODEL_CONTEXT_TOKENS - fixed - reserve - CONTEXT_MARGIN_TOKENS
        return max(256, tokens * INPUT_CHARS_PER_TOKEN)

    async def generate(
        self,
        spec: PromptSpec,
        user: str,
        *,
        history: Sequence[Message] = (),
        max_tokens: int | None = None,
        stream: bool = True,
        examples: Sequence[FewShot] | None = None,
    ) -> PoolResult:
        """One LLM call for this request; deltas go to `on_delta` when streaming.

        `stream=False` keeps intermediate calls (a query plan) out of the
        stream: what the client sees streamed is only text meant for it.
        """
        limit = max_tokens if max_tokens is not None else self.max_tokens(spec)
        kwargs: dict[str, Any] = {
            "tenant": self.tenant,
            "tier": self.tier,
            "task": spec.task,
            "messages": spec.messages(user, history, examples),
            "output": spec.output,
            "max_tokens": limit,
            "temperature": self.request.temperature,
            "request_id": self.request.request_id,
            "call_id": self._next_call_id(),
        }
        if not stream or self.on_delta is None:
            result = await self.pool.complete(**kwargs)
        else:
            result_or_none: PoolResult | None = None
            async with aclosing(self.pool.stream(**kwargs)) as events:
                async for event in events:
                    if isinstance(event, StreamDelta):
                        if event.text:
                            self.streamed = True
                            await self.on_delta(event.text)
                    else:
                        result_or_none = event
            if result_or_none is None:  # the pool always ends with a result; be explicit
                raise TaskError("internal", "the LLM stream ended without a result")
            result = result_or_none
        self.calls.append(result)
        return result

    def _next_call_id(self) -> str:
        self.calls_begun += 1
        rid = self.request.request_id
        return f"{rid}:{self.calls_begun}" if rid else ""

    def usage(self) -> TokenUsage:
        total = TokenUsage()
        for call in self.calls:
            total = add_usage(total, call.usage)
        return total


@functools.cache
def reply_floor(output: type[BaseModel]) -> int:
    """Tokens the longest reply `output`'s bounded JSON schema allows (an upper estimate)."""
    return worst_case_chars(json_schema_for(output)) // JSON_CHARS_PER_TOKEN + 8


def worst_case_chars(node: dict[str, Any]) -> int:
    """Characters of the longest compact JSON value a bounded schema node admits."""
    if "enum" in node:
        return max(len(orjson.dumps(v)) for v in node["enum"])
    if "anyOf" in node:
        return max(worst_case_chars(n) for n in node["anyOf"])
    kind = node.get("type")
    if kind == "object":
        props = node.get("properties", {})
        return 2 + sum(len(k) + 4 + worst_case_chars(v) for k, v in props.items())
    if kind == "array":
        return 2 + int(node.get("maxItems", 0)) * (worst_case_chars(node.get("items", {})) + 1)
    if kind == "string":
        return int(node.get("maxLength", 0)) + 2
    if kind == "integer" and "maximum" in node:
        return len(str(node["maximum"])) + 1
    if kind in ("integer", "number"):
        return 24
    return 5


def cut(text: str, limit: int) -> tuple[str, bool]:
    """`text` at most `limit` characters (an ellipsis marks the cut), and whether it was cut."""
    if len(text) <= limit:
        return text, False
    return text[: max(0, limit - 1)] + "…", True


def percent(value: int | None) -> float | None:
    """A model's 0-100 confidence as the 0-1 `confidence_score` of the reply."""
    return None if value is None else max(0.0, min(1.0, value / 100.0))
