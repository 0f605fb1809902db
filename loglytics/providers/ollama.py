"""Ollama's native API through the official `ollama.AsyncClient`.

Why native and not Ollama's OpenAI shim: only `/api/chat` takes `options`
(num_ctx, num_predict, seed) and `keep_alive`, which decide whether the model
stays loaded and how much context it gets; and its `format` field takes the
JSON schema directly. Usage comes from `prompt_eval_count`/`eval_count`.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx
import ollama

from loglytics.providers.base import (
    ChatRequest,
    ChatResult,
    HealthInfo,
    ProviderIdentity,
    StreamDelta,
    StreamEvent,
)
from loglytics.providers.errors import ProviderError


def _convert(exc: Exception) -> ProviderError:
    """Map the client's exceptions onto retryable / not retryable."""
    if isinstance(exc, ollama.ResponseError):
        if exc.status_code < 0:  # an {"error": ...} line inside a stream
            return ProviderError.protocol(f"stream error: {exc.error}")
        return ProviderError.http(exc.status_code, str(exc.error)[:300])
    if isinstance(exc, httpx.TimeoutException):
        return ProviderError.timeout(f"timeout: {type(exc).__name__}")
    if isinstance(exc, ConnectionError | httpx.ConnectError):
        return ProviderError.connect(f"connect: {exc}")
    return ProviderError.protocol(f"{type(exc).__name__}: {exc}")


_CLIENT_ERRORS = (ollama.ResponseError, httpx.HTTPError, ConnectionError, ValueError)


class OllamaProvider(ProviderIdentity):
    """An Ollama server; one `AsyncClient` (one httpx connection pool) per provider."""

    def __init__(
        self,
        *,
        name: str = "ollama",
        base_url: str,
        model: str,
        max_parallel: int = 4,
        timeout: float = 60.0,
        num_ctx: int = 8192,
        keep_alive: str | float = "30m",
    ) -> None:
        super().__init__(name, model, max_parallel)
        self._num_ctx = num_ctx
        self._keep_alive = keep_alive
        self._client = ollama.AsyncClient(
            host=base_url,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            limits=httpx.Limits(max_connections=max_parallel + 4),
        )

    def _options(self, req: ChatRequest) -> dict[str, Any]:
        options: dict[str, Any] = {
            "num_ctx": self._num_ctx,
            "num_predict": req.max_tokens,
            "temperature": req.temperature,
        }
        if req.seed is not None:
            options["seed"] = req.seed
        return options

    def _result(
        self, req: ChatRequest, last: Mapping[str, Any], text: str, started: float
    ) -> ChatResult:
        return self._served(
            req,
            text,
            last.get("prompt_eval_count"),
            last.get("eval_count"),
            str(last.get("model") or self._model),
            started,
            str(last.get("done_reason") or "stop"),
        )

    def _chat_args(self, req: ChatRequest) -> dict[str, Any]:
        """`/api/chat` arguments shared by whole and streamed calls."""
        return {
            "model": self._model,
            "messages": req.messages,
            "format": req.json_schema,
            "options": self._options(req),
            "keep_alive": self._keep_alive,
        }

    async def complete(self, req: ChatRequest) -> ChatResult:
        started = time.perf_counter()
        try:
            response = await self._client.chat(**self._chat_args(req), stream=False)
        except _CLIENT_ERRORS as exc:
            raise _convert(exc) from exc
        text = response.message.content or ""
        return self._result(req, response.model_dump(), text, started)

    async def stream(self, req: ChatRequest) -> AsyncIterator[StreamEvent]:
        """NDJSON deltas, then one ChatResult built from the `done` line's counters."""
        started = time.perf_counter()
        parts: list[str] = []
        last: dict[str, Any] = {}
        try:
            chunks = await self._client.chat(**self._chat_args(req), stream=True)
            async for chunk in chunks:
                delta = chunk.message.content
                if delta:
                    parts.append(delta)
                    yield StreamDelta(delta)
                if chunk.done:
                    last = chunk.model_dump()
        except _CLIENT_ERRORS as exc:
            raise _convert(exc) from exc
        if not last:
            raise ProviderError.protocol("stream ended without a done line")
        yield self._result(req, last, "".join(parts), started)

    async def health(self) -> HealthInfo:
        """`/api/ps`: answers fast and says which models are loaded (i.e. warm)."""
        started = time.perf_counter()
        try:
            running = await self._client.ps()
        except _CLIENT_ERRORS as exc:
            return HealthInfo(ok=False, detail=str(_convert(exc)))
        loaded = [m.model for m in running.models if m.model]
        return HealthInfo(
            ok=True,
            detail="ok",
            models=loaded,
            latency_ms=(time.perf_counter() - started) * 1000.0,
        )

    async def models(self) -> list[str]:
        """Installed models, from `/api/tags`."""
        try:
            listing = await self._client.list()
        except _CLIENT_ERRORS as exc:
            raise _convert(exc) from exc
        return [m.model for m in listing.models if m.model]

    async def aclose(self) -> None:
        await self._client.close()  # type: ignore[no-untyped-call]
