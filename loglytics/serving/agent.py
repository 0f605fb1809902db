"""The request agent: `llm.requests` in, replies on `llm.responses` keyed by request id.

Why tasks and a semaphore rather than one request at a time: an LLM call
takes seconds and the pool has several parallel slots per provider, so the
agent admits up to `MAX_IN_FLIGHT` requests at once (the pool queues them on
its slots); replies are keyed by request id, so no order across requests is
owed.

Why a request's offset is acked only once its final reply is sent (at least
once): a worker that dies with requests in flight has not committed their
offsets, so the partition's next owner reads them again and answers them,
instead of leaving their callers to wait out their timeouts. The stream is
iterated without automatic acks (`noack`) and each event is acked when its
task ends; Faust commits only the contiguous run of acked offsets, so a slow
request holds back the commit of the faster ones behind it (they are answered
again after a crash, never skipped). A cancelled task (the worker stopping
hard) is not acked. A replay can answer a request twice (a crash after the
reply but before the commit, or a rebalance: Faust discards the commits of
revoked partitions); callers keep the first final reply per request id and
drop later ones (`loglytics.clients.RequestClient`, which the gateway uses),
and the tenant is charged once because the quota ledger settles each call
once per call id, however often it is replayed.

A rebalance does not wait for the requests in flight (`offsets.Holds`): they
are acked when it starts and answered where they started. A clean stop waits for
them (Faust's `stream_wait_empty`) and then commits; only a crash leaves requests
to the partition's next owner. Records Faust's fetch loop drops around a
rebalance are fetched again (`offsets.Refetch`).

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
from typing import cast

import faust
from faust.types import EventT, StreamT

from loglytics.deadletters import DeadLetterFn
from loglytics.kafka_clients import KafkaConnection
from loglytics.runtime import Runtime
from loglytics.serving.metrics import RequestMetrics
from loglytics.serving.offsets import Holds, Refetch
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
        manual = cast(faust.Stream[bytes], stream).noack()  # StreamT does not declare it
        holds = Holds(manual)
        refetch = Refetch(app, requests.get_topic_name())
        running: set[asyncio.Task[None]] = {
            asyncio.create_task(holds.let_go_on_rebalance(app)),
            asyncio.create_task(refetch.watch()),
        }

        async def serve_then_ack(event: EventT[bytes]) -> None:
            """Ack only once the request's final reply (or its dead letter) is on the broker."""
            await service.guarded(event, not_before)
            await app.producer.flush()  # a reply still buffered here would die with us
            await holds.ack(event)  # not reached when cancelled: the next owner replays it

        def done(task: asyncio.Task[None]) -> None:
            running.discard(task)
            gate.release()

        try:
            refetch.waiting()
            async for event in manual.events():
                holds.hold(event)  # held while it waits for a slot too
                if not await refetch.fresh(event):
                    await holds.ack(event)  # passed on before: a refetch brought it again
                    refetch.waiting()
                    continue
                await gate.acquire()
                task = asyncio.create_task(serve_then_ack(event))
                running.add(task)
                task.add_done_callback(done)
                refetch.waiting()
        finally:
            for task in list(running):
                task.cancel()

    return service
