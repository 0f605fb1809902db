"""Replies on `llm.responses`: final responses, error replies and coalesced stream chunks."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from loglytics.schemas import ErrorInfo, LLMResponse, LLMStreamChunk

STREAM_FLUSH_SECONDS = 0.05
STREAM_FLUSH_CHARS = 256

SendReply = Callable[[LLMResponse | LLMStreamChunk], Awaitable[None]]


class ChunkWriter:
    """Numbered stream chunks (seq 0..n-1), coalesced so a token is not a Kafka message."""

    def __init__(self, request_id: str, send: SendReply) -> None:
        self.request_id = request_id
        self.send = send
        self.seq = 0
        self._buffer: list[str] = []
        self._size = 0
        self._flushed = time.monotonic()

    async def write(self, delta: str) -> None:
        self._buffer.append(delta)
        self._size += len(delta)
        if self._size >= STREAM_FLUSH_CHARS or (
            time.monotonic() - self._flushed >= STREAM_FLUSH_SECONDS
        ):
            await self.flush()

    async def flush(self) -> None:
        if not self._buffer:
            return
        delta, self._buffer, self._size = "".join(self._buffer), [], 0
        await self.send(LLMStreamChunk(request_id=self.request_id, seq=self.seq, delta=delta))
        self.seq += 1
        self._flushed = time.monotonic()


def error_reply(
    request_id: str,
    tenant: str,
    task: str,
    error: str,
    message: str,
    *,
    retry_after: float | None = None,
    limit: int | None = None,
    latency_ms: float = 0.0,
) -> LLMResponse:
    return LLMResponse(
        request_id=request_id,
        tenant=tenant,
        task=task,
        ok=False,
        error=ErrorInfo(error=error, message=message, retry_after=retry_after, limit=limit),
        latency_ms=latency_ms,
    )
