"""Serving one request: authenticate, dispatch to its task, reply (chunks first when streaming).

Every request gets exactly one final `LLMResponse` — an answer or an error —
unless it cannot be attributed to anyone: bytes with no usable request id go
to the dead-letter topic (stage "requests"). Requests past their deadline
(the client's header, else `REQUEST_TTL_SECONDS` after production) are
skipped: nobody waits for them any more.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

import faust
from faust.types import EventT

from loglytics.deadletters import DeadLetterFn
from loglytics.providers import NoProviderAvailable, PoolError, RateLimited
from loglytics.runtime import Runtime
from loglytics.schemas import (
    ErrorInfo,
    LLMRequest,
    LLMResponse,
    LLMStreamChunk,
    TenantRecord,
    TokenUsage,
)
from loglytics.serving.metrics import RequestMetrics
from loglytics.serving.protocol import BadRequest, deadline_of, parse_request
from loglytics.serving.replies import ChunkWriter, error_reply
from loglytics.storage.client import Client
from loglytics.tasks import HANDLERS, TaskContext, TaskError, TaskResult

log = logging.getLogger(__name__)

T = TypeVar("T")
STAGE = "requests"
NO_TENANT = TenantRecord(tenant="-", api_key_hashes=["0" * 64])
"""Checked in place of an unknown tenant, so a wrong tenant costs what a wrong key does."""


class WorkerStorage:
    """`tasks.base.Storage` over the runtime's client (clickhouse-connect serialises calls
    on a chdb handle with its own lock, so reads here and the sink's inserts may overlap)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def run(self, fn: Callable[[Client], T]) -> T:
        return await asyncio.to_thread(fn, self.runtime.client)

    def status(self) -> dict[str, Any]:
        sink = self.runtime.sink
        if sink is None:
            return {"running": False}
        return {
            "running": sink.running,
            "rows_pending": sink.rows_pending,
            "rows_written": sink.rows_written,
            "last_error": sink.last_error,
        }


class RequestService:
    """The request stage's work: one event of `llm.requests` to one final reply."""

    def __init__(
        self,
        runtime: Runtime,
        *,
        responses: faust.TopicT,
        metrics: RequestMetrics,
        dead_letter: DeadLetterFn,
    ) -> None:
        self.runtime = runtime
        self.responses = responses
        self.metrics = metrics
        self.dead_letter = dead_letter
        self.storage = WorkerStorage(runtime)

    async def send_reply(self, reply: LLMResponse | LLMStreamChunk) -> None:
        await self.responses.send(key=reply.request_id.encode(), value=reply.to_bytes())

    def _authenticate(self, request: LLMRequest) -> ErrorInfo | None:
        record = self.runtime.tenant(request.tenant)
        if not (record or NO_TENANT).accepts(request.api_key):
            # One message for "no such tenant" and "wrong key": neither is confirmed to a caller.
            return ErrorInfo(error="invalid_credentials", message="unknown tenant or wrong API key")
        if request.task not in HANDLERS:
            known = ", ".join(HANDLERS)
            return ErrorInfo(
                error="unknown_task", message=f"unknown task {request.task!r}; {known}"
            )
        return None

    async def _admit(self, request: LLMRequest) -> ErrorInfo | None:
        """Count the request in its tenant's rate window (the ledger owner's), or refuse it.

        Keyed by request id: a request processed again after a crash is not
        counted twice.
        """
        pool = self.runtime.pool
        ledger = pool.ledger if pool is not None else None
        if ledger is None:
            return None
        try:
            await ledger.admit_request(
                request.tenant, request.request_id, self.runtime.tier_of(request.tenant)
            )
        except (RateLimited, NoProviderAvailable) as exc:
            return ErrorInfo(
                error=exc.error, message=exc.message, retry_after=exc.retry_after, limit=exc.limit
            )
        return None

    async def _run_task(self, request: LLMRequest, writer: ChunkWriter | None) -> LLMResponse:
        """Run the request's handler and turn its result, or its failure, into the final reply."""
        began = time.perf_counter()
        runtime = self.runtime
        assert runtime.pool is not None
        ctx = TaskContext(
            request=request,
            tier=runtime.tier_of(request.tenant),
            pool=runtime.pool,
            storage=self.storage,
            on_delta=writer.write if writer is not None else None,
            grounding=runtime.grounding,
        )

        def elapsed() -> float:
            return (time.perf_counter() - began) * 1000.0

        rid, tenant, task = request.request_id, request.tenant, request.task
        try:
            result: TaskResult = await HANDLERS[task](ctx)
        except TaskError as exc:
            return error_reply(rid, tenant, task, exc.error, exc.message, latency_ms=elapsed())
        except PoolError as exc:
            return error_reply(
                rid,
                tenant,
                task,
                exc.error,
                exc.message,
                retry_after=exc.retry_after,
                limit=exc.limit,
                latency_ms=elapsed(),
            )
        if writer is not None and not ctx.streamed and result.text:
            await writer.write(result.text)  # tasks whose text is code-made stream it whole
        last = ctx.calls[-1] if ctx.calls else None
        return LLMResponse(
            request_id=rid,
            tenant=tenant,
            task=task,
            text=result.text,
            data=result.data,
            model_used=last.model if last else "",
            provider=last.provider if last else "",
            tokens_used=ctx.usage() if ctx.calls else TokenUsage(),
            latency_ms=elapsed(),
            confidence_score=result.confidence,
            truncated=result.truncated,
            cached=bool(ctx.calls) and all(c.cached for c in ctx.calls),
            grounded=result.grounded,
        )

    async def serve(self, request: LLMRequest) -> LLMResponse:
        """Authenticate, dispatch and reply (chunks first when streaming); returns the reply."""
        problem = self._authenticate(request) or await self._admit(request)
        if problem is not None:
            reply = error_reply(
                request.request_id,
                request.tenant,
                request.task,
                problem.error,
                problem.message,
                retry_after=problem.retry_after,
                limit=problem.limit,
            )
            await self.send_reply(reply)
            return reply
        writer = ChunkWriter(request.request_id, self.send_reply) if request.stream else None
        try:
            reply = await self._run_task(request, writer)
        except Exception:
            log.exception("request %s (%s) failed", request.request_id, request.task)
            reply = error_reply(
                request.request_id, request.tenant, request.task, "internal", "internal error"
            )
        if writer is not None:
            await writer.flush()
        await self.send_reply(reply)
        return reply

    async def handle_event(self, event: EventT[Any], not_before: float = 0.0) -> None:
        """One message of `llm.requests`, whatever it holds."""
        value = event.message.value
        if not isinstance(value, bytes):
            value = b"" if value is None else str(value).encode()
        metrics = self.metrics
        if time.time() > deadline_of(event):
            metrics.dropped.labels("expired").inc()
            log.info("skipping expired request at offset %s", event.message.offset)
            return
        if (event.message.timestamp or time.time()) < not_before:
            metrics.dropped.labels("before_start").inc()
            return
        try:
            request = parse_request(value)
        except BadRequest as bad:
            await self._refuse(bad, event)
            return
        began = time.perf_counter()
        metrics.in_flight.inc()
        try:
            reply = await self.serve(request)
        finally:
            metrics.in_flight.dec()
        task = request.task if request.task in HANDLERS else "unknown"
        outcome = "ok" if reply.error is None else reply.error.error
        metrics.requests.labels(task, outcome).inc()
        metrics.latency.labels(task).observe(time.perf_counter() - began)

    async def _refuse(self, bad: BadRequest, event: EventT[Any]) -> None:
        """An undecodable request: answered if its id is known, else dead-lettered."""
        if bad.request_id is None:
            self.metrics.dropped.labels("no_request_id").inc()
            await self.dead_letter(STAGE, bad.reason, event)
            return
        self.metrics.requests.labels("", "invalid_input").inc()
        await self.send_reply(
            error_reply(
                bad.request_id, bad.tenant, "", "invalid_input", f"bad request: {bad.reason}"
            )
        )

    async def guarded(self, event: EventT[Any], not_before: float) -> None:
        """`handle_event`, with any failure dead-lettered: the agent outlives every request."""
        try:
            await self.handle_event(event, not_before)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("request handling failed at offset %s", event.message.offset)
            try:
                await self.dead_letter(STAGE, f"internal: {type(exc).__name__}: {exc}"[:500], event)
            except Exception:
                log.exception("dead-lettering a failed request failed too")
