"""Any OpenAI-compatible server: vLLM (pro tier), llama.cpp (embedded), SGLang.

Why raw httpx and not the `openai` SDK: we need exactly four endpoints, SSE
parsing is twenty lines, and one pooled `httpx.AsyncClient` per provider keeps
connections warm under the pool's own concurrency limit (the bench measures
that overhead against direct calls).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson

from loglytics.providers.base import (
    ChatRequest,
    ChatResult,
    HealthInfo,
    ProviderIdentity,
    StreamDelta,
    StreamEvent,
)
from loglytics.providers.errors import ProviderError


def api_root(base_url: str) -> str:
    """`http://h:8000`, `http://h:8000/` and `http://h:8000/v1` all mean the same server."""
    root = base_url.rstrip("/")
    return root.removesuffix("/v1")


def request_body(req: ChatRequest, model: str, *, stream: bool) -> dict[str, Any]:
    """The `/v1/chat/completions` body; the schema goes in strict `response_format`."""
    body: dict[str, Any] = {
        "model": model,
        "messages": req.messages,
        "max_tokens": req.max_tokens,
        "temperature": req.temperature,
        "stream": stream,
    }
    if req.seed is not None:
        body["seed"] = req.seed
    if req.json_schema is not None:
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": req.schema_name, "schema": req.json_schema, "strict": True},
        }
    if stream:
        body["stream_options"] = {"include_usage": True}
    return body


def _error_message(response: httpx.Response) -> str:
    """OpenAI-style `{"error": {"message": ...}}`, or whatever text came back (bounded)."""
    try:
        payload = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return response.text[:300]
    if isinstance(payload, dict):
        err = payload.get("error", payload)
        if isinstance(err, dict):
            return str(err.get("message", err))[:300]
        return str(err)[:300]
    return str(payload)[:300]


def _transport_error(exc: httpx.HTTPError) -> ProviderError:
    if isinstance(exc, httpx.TimeoutException):
        return ProviderError.timeout(f"timeout: {type(exc).__name__}")
    if isinstance(exc, httpx.ConnectError):
        return ProviderError.connect(f"connect: {exc}")
    return ProviderError.protocol(f"{type(exc).__name__}: {exc}")


class OpenAIProvider(ProviderIdentity):
    """An OpenAI-compatible chat server reached over HTTP."""

    def __init__(
        self,
        *,
        name: str,
        base_url: str,
        model: str,
        max_parallel: int = 4,
        api_key: str = "",
        timeout: float = 60.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(name, model, max_parallel)
        self._root = api_root(base_url)
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(
            base_url=self._root,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            limits=httpx.Limits(
                max_connections=max_parallel + 4, max_keepalive_connections=max_parallel + 4
            ),
        )

    @property
    def base_url(self) -> str:
        return self._root

    async def complete(self, req: ChatRequest) -> ChatResult:
        started = time.perf_counter()
        try:
            response = await self._client.post(
                "/v1/chat/completions", json=request_body(req, self._model, stream=False)
            )
        except httpx.HTTPError as exc:
            raise _transport_error(exc) from exc
        if response.status_code != 200:
            raise ProviderError.http(response.status_code, _error_message(response))
        try:
            payload = orjson.loads(response.content)
            choice = payload["choices"][0]
            text = choice["message"].get("content") or ""
            finish = choice.get("finish_reason") or "stop"
        except (orjson.JSONDecodeError, KeyError, IndexError, TypeError, AttributeError) as exc:
            raise ProviderError.protocol(f"malformed completion: {exc!r}") from exc
        model = str(payload.get("model") or self._model)
        usage = payload.get("usage") or {}
        return self._served(
            req,
            text,
            usage.get("prompt_tokens"),
            usage.get("completion_tokens"),
            model,
            started,
            str(finish),
        )

    async def stream(self, req: ChatRequest) -> AsyncIterator[StreamEvent]:
        """SSE deltas, then one ChatResult; usage from the `include_usage` chunk if sent."""
        started = time.perf_counter()
        parts: list[str] = []
        finish = "stop"
        model = self._model
        usage: dict[str, Any] = {}
        body = request_body(req, self._model, stream=True)
        try:
            async with self._client.stream("POST", "/v1/chat/completions", json=body) as response:
                if response.status_code != 200:
                    await response.aread()
                    raise ProviderError.http(response.status_code, _error_message(response))
                async for line in response.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    try:
                        chunk = orjson.loads(data)
                    except orjson.JSONDecodeError as exc:
                        raise ProviderError.protocol(f"bad SSE chunk: {data[:80]!r}") from exc
                    if "error" in chunk:
                        raise ProviderError.protocol(f"stream error: {str(chunk['error'])[:200]}")
                    model = str(chunk.get("model") or model)
                    if chunk.get("usage"):
                        usage = chunk["usage"]
                    for choice in chunk.get("choices") or ():
                        delta = (choice.get("delta") or {}).get("content")
                        if delta:
                            parts.append(delta)
                            yield StreamDelta(delta)
                        if choice.get("finish_reason"):
                            finish = str(choice["finish_reason"])
        except httpx.HTTPError as exc:
            raise _transport_error(exc) from exc
        yield self._served(
            req,
            "".join(parts),
            usage.get("prompt_tokens"),
            usage.get("completion_tokens"),
            model,
            started,
            finish,
        )

    async def health(self) -> HealthInfo:
        """`/health` (llama.cpp, vLLM); servers without it are probed via `/v1/models`."""
        started = time.perf_counter()
        try:
            response = await self._client.get("/health")
            if response.status_code == 404:
                response = await self._client.get("/v1/models")
        except httpx.HTTPError as exc:
            return HealthInfo(ok=False, detail=str(_transport_error(exc)))
        latency = (time.perf_counter() - started) * 1000.0
        if response.status_code != 200:
            return HealthInfo(
                ok=False,
                detail=f"HTTP {response.status_code}: {_error_message(response)}",
                latency_ms=latency,
            )
        return HealthInfo(ok=True, detail="ok", latency_ms=latency)

    async def models(self) -> list[str]:
        try:
            response = await self._client.get("/v1/models")
        except httpx.HTTPError as exc:
            raise _transport_error(exc) from exc
        if response.status_code != 200:
            raise ProviderError.http(response.status_code, _error_message(response))
        try:
            return [str(m["id"]) for m in orjson.loads(response.content).get("data", [])]
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
            raise ProviderError.protocol(f"malformed model list: {exc!r}") from exc

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()
