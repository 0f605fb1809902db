"""The provider interface: one request/result shape for every backend.

Why a Protocol of plain dataclasses: the pool must not care whether a reply
came from Ollama's native API or an OpenAI-compatible server, and tests can
stand in a fake by writing five methods, with no base class to inherit.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from loglytics.providers.tokens import usage_from
from loglytics.schemas import TokenUsage

Message = dict[str, str]


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """One chat completion. `json_schema`, when set, constrains the reply (server-side)."""

    messages: list[Message]
    max_tokens: int
    temperature: float = 0.0
    seed: int | None = None
    json_schema: dict[str, Any] | None = None
    schema_name: str = "output"


@dataclass(frozen=True, slots=True)
class ChatResult:
    """A finished completion and what it cost. `finish_reason` "length" means truncated."""

    text: str
    usage: TokenUsage
    provider: str
    model: str
    latency_ms: float
    finish_reason: str = "stop"


@dataclass(frozen=True, slots=True)
class StreamDelta:
    """A piece of generated text, in order."""

    text: str


StreamEvent = StreamDelta | ChatResult
"""What `Provider.stream` yields: deltas, then exactly one `ChatResult` (the whole text)."""


@dataclass(frozen=True, slots=True)
class HealthInfo:
    """A health probe's answer; `detail` says why not, or what is loaded."""

    ok: bool
    detail: str = ""
    models: list[str] = field(default_factory=list)
    latency_ms: float = 0.0


@runtime_checkable
class Provider(Protocol):
    """An LLM backend. Raises `ProviderError` (never bare httpx/ollama errors) on failure."""

    @property
    def name(self) -> str: ...

    @property
    def model(self) -> str: ...

    @property
    def max_parallel(self) -> int: ...

    async def complete(self, req: ChatRequest) -> ChatResult: ...

    def stream(self, req: ChatRequest) -> AsyncIterator[StreamEvent]: ...

    async def health(self) -> HealthInfo: ...

    async def models(self) -> list[str]: ...

    async def aclose(self) -> None: ...


class ProviderIdentity:
    """What every provider is called, serves and can run at once (the `Provider` properties)."""

    def __init__(self, name: str, model: str, max_parallel: int) -> None:
        self._name = name
        self._model = model
        self._max_parallel = max_parallel

    @property
    def name(self) -> str:
        return self._name

    @property
    def model(self) -> str:
        return self._model

    @property
    def max_parallel(self) -> int:
        return self._max_parallel

    def _served(
        self,
        req: ChatRequest,
        text: str,
        prompt_tokens: int | None,
        completion_tokens: int | None,
        model: str,
        started: float,
        finish: str,
    ) -> ChatResult:
        """A served call: usage from the server's counters, estimated when it sent none."""
        return ChatResult(
            text=text,
            usage=usage_from(prompt_tokens, completion_tokens, messages=req.messages, text=text),
            provider=self._name,
            model=model,
            latency_ms=(time.perf_counter() - started) * 1000.0,
            finish_reason=finish,
        )
