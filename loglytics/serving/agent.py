"""The request agent: `llm.requests` in, replies on `llm.responses` keyed by request id.

Why tasks and a semaphore rather than one request at a time: an LLM call
takes seconds and the pool has several parallel slots per provider, so the
agent admits up to `MAX_IN_FLIGHT` requests at once (the pool queues them on
its slots); replies are keyed by request id, so no order across requests is
owed. Offsets advance as requests are admitted: a request in flight when the
worker crashes is not replayed (at most once), because a replay would charge
the tenant twice for an answer whose caller has most likely given up.

A consumer group that has never committed on `llm.requests` (a new
deployment, app id or test worker) starts at the topic's earliest offset like
every agent; it skips requests produced before the worker started (less
`FRESH_GROUP_GRACE`), which another deployment has already answered, instead
of answering them again.
"""

from __future__ import annotations

import asyncio
import logging
import time

import faust
from faust.types import StreamT

from loglytics.deadletters import DeadLetterFn
from loglytics.kafka_clients import KafkaConnection
from loglytics.runtime import Runtime
from loglytics.serving.metrics import RequestMetrics
from loglytics.serving.protocol import fresh_group
from loglytics.serving.service import RequestService

log = logging.getLogger(__name__)

MAX_IN_FLIGHT = 16
FRESH_GROUP_GRACE = 5.0


def register(
    app: faust.App,
    runtime: Runtime,
    *,
    requests: faust.TopicT,
    responses: faust.TopicT,
    dead_letter: DeadLetterFn,
) -> RequestService:
    """Declare the request agent on the app."""
    started_at = time.time()  # the worker's start: a new group skips requests before it
    service = RequestService(
        runtime,
        responses=responses,
        metrics=RequestMetrics(runtime.registry),
        dead_letter=dead_letter,
    )

    @app.agent(requests, name="loglytics.requests")
    async def serve_requests(stream: StreamT[bytes]) -> None:
        """Admit requests as they come, up to `MAX_IN_FLIGHT` at once."""
        await runtime.ready()
        fresh = await fresh_group(KafkaConnection.from_settings(runtime.settings), app.conf.id)
        not_before = started_at - FRESH_GROUP_GRACE if fresh else 0.0
        if not_before:
            log.info("new consumer group: requests produced before this worker are skipped")
        gate = asyncio.Semaphore(MAX_IN_FLIGHT)
        running: set[asyncio.Task[None]] = set()

        def done(task: asyncio.Task[None]) -> None:
            running.discard(task)
            gate.release()

        try:
            async for event in stream.events():
                await gate.acquire()
                task = asyncio.create_task(service.guarded(event, not_before))
                running.add(task)
                task.add_done_callback(done)
        finally:
            for task in list(running):
                task.cancel()

    return service
