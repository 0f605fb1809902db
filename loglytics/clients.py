"""Request/reply over Kafka: produce an `LLMRequest`, read its reply from `llm.responses`.

Used by `loglytics ask`, by the HTTP gateway inside the worker and by tests.
One client holds one producer and one consumer assigned to every partition of
`llm.responses` (no consumer group: nothing to join, nothing committed); it is
positioned at the end *before* any request is produced, so a reply cannot
arrive before we listen. A dispatcher routes records by key (the request id)
to the waiting caller; many calls can share one client.

Replies are kept once: the first final reply of a request id ends its wait
and every later record for that id is dropped (counted in `duplicates`). A
request is served at least once (`loglytics.serving.agent`): the partition's
next owner answers again a request whose worker died or whose partition moved
before its offset was committed, so a second final reply is expected now and
then and must not reach the caller. A replayed stream starts again at seq 0:
chunks whose seq was already passed on are dropped too, so the caller sees
each seq once, in order (the final reply's text is the whole answer).

Each request carries a deadline header: the worker drops a request whose
deadline passed (no one waits for it any more) instead of spending LLM time
on it — this matters when a worker starts after a backlog built up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from loglytics.follower import follow_records
from loglytics.kafka_admin import ensure_topics
from loglytics.kafka_clients import MAX_MESSAGE_BYTES, KafkaConnection
from loglytics.schemas import DecodeError, LLMRequest, LLMResponse, LLMStreamChunk
from loglytics.topics import REQUESTS, RESPONSES

log = logging.getLogger(__name__)

DEADLINE_HEADER = "loglytics-deadline"
Reply = LLMStreamChunk | LLMResponse


class ReplyTimeout(TimeoutError):
    """No final reply arrived in time."""


def new_request_id() -> str:
    return uuid.uuid4().hex


def decode_reply(value: bytes) -> Reply:
    """A record of `llm.responses` as a chunk or a response; `DecodeError` otherwise."""
    try:
        obj = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"invalid JSON: {exc}") from None
    if isinstance(obj, dict) and obj.get("kind") == "chunk":
        return LLMStreamChunk.from_obj(obj)
    return LLMResponse.from_obj(obj)


@dataclass
class ReplyWaiter:
    """One waiting caller's replies: chunks in seq order, then its first final reply."""

    queue: asyncio.Queue[Reply] = field(default_factory=asyncio.Queue)
    next_seq: int = 0
    finished: bool = False

    def offer(self, reply: Reply) -> bool:
        """Queue `reply` for the caller; False when it repeats what the caller already has."""
        if self.finished:
            return False
        if isinstance(reply, LLMStreamChunk):
            if reply.seq < self.next_seq:  # a replayed request streams again from seq 0
                return False
            self.next_seq = reply.seq + 1
        elif reply.final:
            self.finished = True
        self.queue.put_nowait(reply)
        return True


class RequestClient:
    """A shared request/reply client; `async with RequestClient(kafka) as c: ...`."""

    def __init__(
        self, kafka: KafkaConnection, *, partitions: int = 4, fetch_wait_ms: int = 20
    ) -> None:
        self.kafka = kafka
        self.partitions = partitions
        self._fetch_wait_ms = fetch_wait_ms
        self._producer: AIOKafkaProducer | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._dispatcher: asyncio.Task[None] | None = None
        self._waiters: dict[str, ReplyWaiter] = {}
        self.duplicates = 0
        """Replies dropped because their request's caller already had them (replays)."""

    async def start(self) -> None:
        await ensure_topics(self.kafka, self.partitions)
        producer = self.kafka.producer(linger_ms=0, max_request_size=MAX_MESSAGE_BYTES)
        # A reply may be as large as the worker's producer allows (MAX_MESSAGE_BYTES).
        consumer = self.kafka.consumer(
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="latest",
            fetch_max_wait_ms=self._fetch_wait_ms,
            max_partition_fetch_bytes=MAX_MESSAGE_BYTES,
        )
        await producer.start()
        try:
            await consumer.start()
            await consumer.topics()  # loads metadata, so the partitions are known
            parts = consumer.partitions_for_topic(RESPONSES.name) or set(range(self.partitions))
            tps = [TopicPartition(RESPONSES.name, p) for p in sorted(parts)]
            consumer.assign(tps)
            await consumer.seek_to_end(*tps)
            for tp in tps:  # resolve the end now: replies produced after this are seen
                await consumer.position(tp)
        except BaseException:
            await producer.stop()
            await consumer.stop()
            raise
        self._producer, self._consumer = producer, consumer
        self._dispatcher = asyncio.create_task(self._dispatch(), name="reply-dispatcher")

    async def stop(self) -> None:
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._dispatcher
            self._dispatcher = None
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def __aenter__(self) -> RequestClient:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _dispatch(self) -> None:
        assert self._consumer is not None
        await follow_records(
            self._consumer, lambda _topic, key, value: self._route(key, value), what=RESPONSES.name
        )

    def _route(self, key: Any, value: Any) -> None:
        if not isinstance(key, bytes) or not isinstance(value, bytes):
            return
        waiter = self._waiters.get(key.decode(errors="replace"))
        if waiter is None:  # nobody waits (any more): another caller's, or a late replay
            return
        try:
            reply = decode_reply(value)
        except DecodeError as exc:
            log.warning("undecodable reply for %r: %s", key, exc.reason)
            return
        if not waiter.offer(reply):
            self.duplicates += 1
            log.info("dropped a repeated reply to %r (the request was served again)", key)

    async def stream(self, request: LLMRequest, timeout: float) -> AsyncGenerator[Reply, None]:
        """Send `request`; yield its chunks (if streamed), then its final `LLMResponse`."""
        async for reply in self.stream_raw(
            request.request_id, request.tenant.encode(), request.to_bytes(), timeout
        ):
            yield reply

    async def stream_raw(
        self,
        request_id: str,
        key: bytes | None,
        value: bytes,
        timeout: float,
        partition: int | None = None,
    ) -> AsyncGenerator[Reply, None]:
        """Like `stream`, for bytes that may not be a valid request (tests, gateways);
        `partition` overrides the key's (a request may reach any partition)."""
        if self._producer is None:
            raise RuntimeError("RequestClient is not started")
        if request_id in self._waiters:
            raise ValueError(f"request id {request_id!r} is already waiting")
        waiter = ReplyWaiter()
        self._waiters[request_id] = waiter
        deadline = time.time() + timeout
        loop_deadline = asyncio.get_running_loop().time() + timeout
        try:
            headers = [(DEADLINE_HEADER, f"{deadline:.3f}".encode())]
            await self._producer.send_and_wait(
                REQUESTS.name, value=value, key=key, headers=headers, partition=partition
            )
            while True:
                remaining = loop_deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    raise ReplyTimeout(f"no reply to {request_id} within {timeout:.0f}s")
                try:
                    reply = await asyncio.wait_for(waiter.queue.get(), remaining)
                except TimeoutError:
                    raise ReplyTimeout(f"no reply to {request_id} within {timeout:.0f}s") from None
                yield reply
                if isinstance(reply, LLMResponse) and reply.final:
                    return
        finally:
            self._waiters.pop(request_id, None)

    async def call(self, request: LLMRequest, timeout: float) -> LLMResponse:
        """Send `request` and return its final response (chunks, if any, are dropped)."""
        async for reply in self.stream(request, timeout):
            if isinstance(reply, LLMResponse):
                return reply
        raise ReplyTimeout(f"no final reply to {request.request_id}")  # pragma: no cover


async def ask_once(
    kafka: KafkaConnection, request: LLMRequest, timeout: float
) -> AsyncGenerator[Reply, None]:
    """One request on a client of its own (what a CLI needs)."""
    async with RequestClient(kafka) as client, aclosing(client.stream(request, timeout)) as it:
        async for reply in it:
            yield reply
