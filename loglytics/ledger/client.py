"""`RemoteLedger`: asks the owner of a tenant's ledger partition, over Kafka.

An op goes to `quota.ops` keyed by tenant (so to the partition whose owner
decides for that tenant); the owner answers on `quota.replies` keyed by this
client's id. The client reads only the one partition its id hashes to, from
its end at start, so a worker or a gateway sees its own answers and few others.

A reply that does not come within `reply_timeout` gets the same op sent again
(same `op_id`, and ops are idempotent per call or request id), until
`give_up_after`; then the call fails with `LedgerUnavailable`, which the pool
treats like no provider: detection keeps its rules' findings, a request gets
a 503 with `Retry-After`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from loglytics.follower import follow_records
from loglytics.kafka_clients import KafkaConnection
from loglytics.partitioning import partition_for, tenant_partitioner
from loglytics.providers.errors import NoProviderAvailable
from loglytics.providers.ledger import Ledger
from loglytics.schemas import DecodeError, LedgerOp, LedgerReply
from loglytics.topics import QUOTA_OPS, QUOTA_REPLIES

log = logging.getLogger(__name__)


class LedgerUnavailable(NoProviderAvailable):
    """No owner answered within `give_up_after`: nothing was admitted."""


class RemoteLedger(Ledger):
    """The ledger as every worker, gateway and bench sees it: a Kafka request/reply."""

    def __init__(
        self,
        kafka: KafkaConnection,
        *,
        partitions: int,
        client_id: str | None = None,
        reply_timeout: float = 2.0,
        give_up_after: float = 15.0,
    ) -> None:
        self.kafka = kafka
        self.partitions = partitions
        self.client_id = client_id or f"ledger-client-{uuid.uuid4().hex[:12]}"
        self.reply_timeout = reply_timeout
        self.give_up_after = give_up_after
        self._producer: AIOKafkaProducer | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._reader: asyncio.Task[None] | None = None
        self._waiting: dict[str, asyncio.Future[LedgerReply]] = {}

    async def start(self) -> None:
        if self._producer is not None:
            return
        producer = self.kafka.producer(linger_ms=0, partitioner=tenant_partitioner)
        consumer = self.kafka.consumer(
            group_id=None, enable_auto_commit=False, fetch_max_wait_ms=10
        )
        await producer.start()
        try:
            await consumer.start()
            mine = TopicPartition(
                QUOTA_REPLIES.name, partition_for(self.client_id, self.partitions)
            )
            consumer.assign([mine])
            await consumer.seek_to_end(mine)
            await consumer.position(mine)  # resolve the end now: later replies are seen
        except BaseException:
            await producer.stop()
            await consumer.stop()
            raise
        self._producer, self._consumer = producer, consumer
        self._reader = asyncio.create_task(self._read(), name="ledger-replies")

    async def stop(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None
        for closable in (self._consumer, self._producer):
            if closable is not None:
                await closable.stop()
        self._consumer = self._producer = None

    async def _read(self) -> None:
        assert self._consumer is not None
        await follow_records(
            self._consumer,
            lambda _topic, key, value: self._route(key, value),
            what=QUOTA_REPLIES.name,
            retry_delay=0.2,
        )

    def _route(self, key: Any, value: Any) -> None:
        if key != self.client_id.encode() or not isinstance(value, bytes):
            return  # another client's answer on the same partition
        try:
            reply = LedgerReply.from_bytes(value)
        except DecodeError as exc:
            log.warning("undecodable ledger reply: %s", exc.reason)
            return
        waiter = self._waiting.get(reply.op_id)
        if waiter is not None and not waiter.done():
            waiter.set_result(reply)

    async def ask(self, op: LedgerOp) -> LedgerReply:
        if self._producer is None:
            raise RuntimeError("RemoteLedger is not started")
        op = op.model_copy(update={"reply_to": self.client_id})
        waiter: asyncio.Future[LedgerReply] = asyncio.get_running_loop().create_future()
        self._waiting[op.op_id] = waiter
        deadline = time.monotonic() + self.give_up_after
        try:
            while True:
                await self._producer.send_and_wait(
                    QUOTA_OPS.name, key=op.tenant.encode(), value=op.to_bytes()
                )
                left = deadline - time.monotonic()
                try:
                    return await asyncio.wait_for(
                        asyncio.shield(waiter), min(self.reply_timeout, max(0.0, left))
                    )
                except TimeoutError:
                    if time.monotonic() >= deadline:
                        raise LedgerUnavailable(
                            f"the quota ledger did not answer {op.kind} within"
                            f" {self.give_up_after:g}s",
                            retry_after=5.0,
                        ) from None
                    log.info("no ledger reply to %s %s yet; sending it again", op.kind, op.op_id)
        finally:
            self._waiting.pop(op.op_id, None)
