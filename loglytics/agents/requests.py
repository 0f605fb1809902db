"""The request agent: `llm.requests` in, replies on `llm.responses` keyed by request id.

Every request gets exactly one final `LLMResponse` — an answer or an error —
unless it cannot be attributed to anyone: bytes with no usable request id go
to the dead-letter topic (stage "requests"). The agent never dies on input.

Why tasks and a semaphore rather than one request at a time: an LLM call
takes seconds and the pool has several parallel slots per provider, so the
agent admits up to `MAX_IN_FLIGHT` requests at once (the pool queues them on
its slots); replies are keyed by request id, so no order across requests is
owed. Offsets advance as requests are admitted: a request in flight when the
worker crashes is not replayed (at most once), because a replay would charge
the tenant twice for an answer whose caller has most likely given up.

Requests past their deadline (the client's header, else `REQUEST_TTL_SECONDS`
after production) are skipped: nobody waits for them any more. A consumer
group that has never committed on `llm.requests` (a new deployment, app id
or test worker) starts at the topic's earliest offset like every agent; it
skips requests produced before the worker started (less `FRESH_GROUP_GRACE`),
which another deployment has already answered, instead of answering them again.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from typing import Any, TypeVar

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.types import EventT, StreamT
from prometheus_client import Counter, Gauge, Histogram

from loglytics.agents.deadletters import dead_letter
from loglytics.agents.runtime import runtime
from loglytics.app import app
from loglytics.clients import DEADLINE_HEADER
from loglytics.providers import PoolError
from loglytics.schemas import (
    DecodeError,
    ErrorInfo,
    LLMRequest,
    LLMResponse,
    LLMStreamChunk,
    TokenUsage,
)
from loglytics.settings import get_settings
from loglytics.storage.client import Client
from loglytics.tasks import HANDLERS, TaskContext, TaskError, TaskResult
from loglytics.topics import REQUESTS, requests_topic, responses_topic

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_IN_FLIGHT = 16
FRESH_GROUP_GRACE = 5.0
STARTED_AT = time.time()
REQUEST_TTL_SECONDS = 300.0
STREAM_FLUSH_SECONDS = 0.05
STREAM_FLUSH_CHARS = 256
STAGE = "requests"
_REQUEST_ID = re.compile(rb'"request_id"\s*:\s*"([A-Za-z0-9_.:-]{1,128})"')


class RequestMetrics:
    """Per-task request counts by outcome, latency, and requests in flight."""

    def __init__(self) -> None:
        registry = runtime.registry
        self.requests = Counter(
            "loglytics_requests_total",
            "On-demand requests by task and outcome (ok or the error kind)",
            ["task", "outcome"],
            registry=registry,
        )
        self.latency = Histogram(
            "loglytics_request_seconds",
            "Time from taking a request to sending its final reply",
            ["task"],
            registry=registry,
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 40, 80),
        )
        self.in_flight = Gauge(
            "loglytics_requests_in_flight", "Requests being served", registry=registry
        )
        self.dropped = Counter(
            "loglytics_requests_dropped_total",
            "Requests not answered: expired, or dead-lettered for lack of a request id",
            ["reason"],
            registry=registry,
        )


metrics = RequestMetrics()


class BadRequest(Exception):
    """Bytes that are not a valid `LLMRequest`; `request_id` is set if one could be found."""

    def __init__(self, reason: str, request_id: str | None, tenant: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.request_id = request_id
        self.tenant = tenant


def parse_request(value: bytes) -> LLMRequest:
    """Decode a request, or raise `BadRequest` with whatever id and tenant can be salvaged."""
    try:
        obj = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        found = _REQUEST_ID.search(value)
        rid = found.group(1).decode() if found else None
        raise BadRequest(f"invalid JSON: {exc}", rid, "") from None
    try:
        return LLMRequest.from_obj(obj)
    except DecodeError as exc:
        rid = obj.get("request_id") if isinstance(obj, dict) else None
        tenant = obj.get("tenant") if isinstance(obj, dict) else None
        usable = isinstance(rid, str) and 0 < len(rid) <= 128
        return_tenant = tenant if isinstance(tenant, str) and len(tenant) <= 64 else ""
        raise BadRequest(exc.reason, rid if usable else None, return_tenant) from None


async def fresh_group() -> bool:
    """True when this app's consumer group has no committed offset on `llm.requests`."""
    settings = get_settings()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers or "127.0.0.1:9092",
        group_id=app.conf.id,
        enable_auto_commit=False,
    )
    try:
        await consumer.start()
        await consumer.topics()
        parts = consumer.partitions_for_topic(REQUESTS.name) or set()
        for part in parts:
            if await consumer.committed(TopicPartition(REQUESTS.name, part)) is not None:
                return False
        return bool(parts)
    except Exception:  # cannot tell: serve everything within its deadline
        log.warning("could not read committed offsets of llm.requests", exc_info=True)
        return False
    finally:
        await consumer.stop()


def deadline_of(event: EventT[Any]) -> float:
    """The client's deadline header, else production time plus the default TTL."""
    headers: Any = event.message.headers or ()
    items = headers.items() if isinstance(headers, dict) else headers
    for name, raw in items:
        if name == DEADLINE_HEADER:
            try:
                return float(raw.decode() if isinstance(raw, bytes) else raw)
            except (ValueError, AttributeError):
                break
    produced = event.message.timestamp or time.time()
    return float(produced) + REQUEST_TTL_SECONDS


class WorkerStorage:
    """`tasks.base.Storage` over the runtime's client (clickhouse-connect serialises calls
    on a chdb handle with its own lock, so reads here and the sink's inserts may overlap)."""

    async def run(self, fn: Callable[[Client], T]) -> T:
        return await asyncio.to_thread(fn, runtime.client)

    def status(self) -> dict[str, Any]:
        sink = runtime.sink
        if sink is None:
            return {"running": False}
        return {
            "running": sink.running,
            "rows_pending": sink.rows_pending,
            "rows_written": sink.rows_written,
            "last_error": sink.last_error,
        }


storage = WorkerStorage()


async def send_reply(reply: LLMResponse | LLMStreamChunk) -> None:
    await responses_topic.send(key=reply.request_id.encode(), value=reply.to_bytes())


class ChunkWriter:
    """Numbered stream chunks (seq 0..n-1), coalesced so a token is not a Kafka message."""

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
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
        await send_reply(LLMStreamChunk(request_id=self.request_id, seq=self.seq, delta=delta))
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


def _authenticate(request: LLMRequest) -> ErrorInfo | None:
    record = runtime.tenant(request.tenant)
    if record is None or not record.accepts(request.api_key):
        # One message for "no such tenant" and "wrong key": neither is confirmed to a caller.
        return ErrorInfo(error="invalid_credentials", message="unknown tenant or wrong API key")
    if request.task not in HANDLERS:
        known = ", ".join(HANDLERS)
        return ErrorInfo(error="unknown_task", message=f"unknown task {request.task!r}; {known}")
    return None


async def _run_task(request: LLMRequest, writer: ChunkWriter | None) -> LLMResponse:
    """Run the request's handler and turn its result, or its failure, into the final reply."""
    began = time.perf_counter()
    assert runtime.pool is not None
    ctx = TaskContext(
        request=request,
        tier=runtime.tier_of(request.tenant),
        pool=runtime.pool,
        storage=storage,
        on_delta=writer.write if writer is not None else None,
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
    )


async def serve(request: LLMRequest) -> LLMResponse:
    """Authenticate, dispatch and reply (chunks first when streaming); returns the final reply."""
    problem = _authenticate(request)
    if problem is not None:
        reply = error_reply(
            request.request_id, request.tenant, request.task, problem.error, problem.message
        )
        await send_reply(reply)
        return reply
    writer = ChunkWriter(request.request_id) if request.stream else None
    try:
        reply = await _run_task(request, writer)
    except Exception:
        log.exception("request %s (%s) failed", request.request_id, request.task)
        reply = error_reply(
            request.request_id, request.tenant, request.task, "internal", "internal error"
        )
    if writer is not None:
        await writer.flush()
    await send_reply(reply)
    return reply


async def handle_event(event: EventT[Any], not_before: float = 0.0) -> None:
    """One message of `llm.requests`, whatever it holds."""
    value = event.message.value
    if not isinstance(value, bytes):
        value = b"" if value is None else str(value).encode()
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
        if bad.request_id is None:
            metrics.dropped.labels("no_request_id").inc()
            await dead_letter(STAGE, bad.reason, event)
            return
        metrics.requests.labels("", "invalid_input").inc()
        await send_reply(
            error_reply(
                bad.request_id, bad.tenant, "", "invalid_input", f"bad request: {bad.reason}"
            )
        )
        return
    began = time.perf_counter()
    metrics.in_flight.inc()
    try:
        reply = await serve(request)
    finally:
        metrics.in_flight.dec()
    task = request.task if request.task in HANDLERS else "unknown"
    outcome = "ok" if reply.error is None else reply.error.error
    metrics.requests.labels(task, outcome).inc()
    metrics.latency.labels(task).observe(time.perf_counter() - began)


async def _guarded(event: EventT[Any], not_before: float) -> None:
    try:
        await handle_event(event, not_before)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # the agent must outlive any one request
        log.exception("request handling failed at offset %s", event.message.offset)
        try:
            await dead_letter(STAGE, f"internal: {type(exc).__name__}: {exc}"[:500], event)
        except Exception:
            log.exception("dead-lettering a failed request failed too")


@app.agent(requests_topic)
async def serve_requests(stream: StreamT[bytes]) -> None:
    """Admit requests as they come, up to `MAX_IN_FLIGHT` at once."""
    await runtime.ready()
    not_before = STARTED_AT - FRESH_GROUP_GRACE if await fresh_group() else 0.0
    if not_before:
        log.info("new consumer group: requests produced before this worker started are skipped")
    gate = asyncio.Semaphore(MAX_IN_FLIGHT)
    running: set[asyncio.Task[None]] = set()

    def done(task: asyncio.Task[None]) -> None:
        running.discard(task)
        gate.release()

    try:
        async for event in stream.events():
            await gate.acquire()
            task = asyncio.create_task(_guarded(event, not_before))
            running.add(task)
            task.add_done_callback(done)
    finally:
        for task in list(running):
            task.cancel()
