"""The request agent's offsets: acked once answered, let go at a rebalance, refetched
when Faust drops them.

`Holds`: Faust's rebalance waits until every event read is acked. Answering a
request may need the quota ledger, whose owner's agent that very rebalance pauses,
so waiting would hold the rebalance, and the answer, until the ledger client gives
up. When a rebalance starts, the requests read before it are acked: the rebalance
goes on and they are answered here, where they started (this worker is alive; only
a crash leaves requests to the next owner, and a crash goes through no rebalance of
ours).

`Refetch`: Faust's fetch loop stops in the middle of a fetched batch when the flow
is suspended or the generation changes under it, and drops the rest of the batch
while the consumer's position is already past it (Faust then counts the hole as a
gap, as if compaction had removed those offsets, and commits past it). Seen in the
three-worker tests: around a rebalance a partition skipped seven requests, or
stopped yielding at all with requests still on it. `llm.requests` is neither
compacted nor transactional, so a hole is a loss: the partition is sought back to
the first missing offset and the records passed on before are skipped when they
come again. The same hole after a rebalance can leave the stream starving; an
agent that has waited `STALL_S` for an event while a partition it owns holds
records past the next one it expects seeks that partition back too.
"""

from __future__ import annotations

import asyncio
import logging
import time

import faust
from faust.types import TP, EventT, StreamT

log = logging.getLogger(__name__)

REBALANCE_POLL_S = 0.25
STALL_S = 2.0
SEEN_KEPT = 4096
"""Offsets remembered per partition to recognise a refetched record."""


class Holds:
    """The requests read and not yet acked, so a rebalance can let go of them."""

    def __init__(self, stream: StreamT[bytes]) -> None:
        self.stream = stream
        self.events: dict[int, EventT[bytes]] = {}

    def hold(self, event: EventT[bytes]) -> None:
        self.events[id(event)] = event

    async def ack(self, event: EventT[bytes]) -> None:
        """Ack once, whoever comes first: the request's task or a rebalance."""
        self.events.pop(id(event), None)
        if not event.message.acked:
            await self.stream.ack(event)

    async def let_go_on_rebalance(self, app: faust.App) -> None:
        """While a rebalance is under way, acks the requests read before it (of the
        generation it revokes), never those read since, which are acked when answered."""
        revoked = app.consumer_generation_id
        while True:
            await asyncio.sleep(REBALANCE_POLL_S)
            if not app.rebalancing:
                revoked = app.consumer_generation_id  # the one the next rebalance revokes
                continue
            old = [e for e in self.events.values() if (e.message.generation_id or 0) <= revoked]
            if old:
                log.info("rebalance: %d requests in flight are answered here", len(old))
            for event in old:
                await self.ack(event)


class Refetch:
    """Notices request records Faust dropped and fetches them again until they come."""

    def __init__(self, app: faust.App, topic: str) -> None:
        self.app = app
        self.topic = topic
        self.last: dict[TP, int] = {}
        self.seen: dict[TP, set[int]] = {}
        self.holes: dict[TP, set[int]] = {}
        self.idle_since: float | None = None

    def _committed(self, tp: TP) -> int:
        committed: dict[TP, int | None] = getattr(self.app.consumer, "_committed_offset", {})
        return committed.get(tp) or 0

    async def fresh(self, event: EventT[bytes]) -> bool:
        """False for a record passed on before (it came again after a refetch); seeks
        back when the record leaves a hole behind the last one passed on."""
        self.idle_since = None
        tp, offset = event.message.tp, event.message.offset
        seen = self.seen.setdefault(tp, set())
        if offset in seen:
            return False
        seen.add(offset)
        if len(seen) > SEEN_KEPT:
            seen.difference_update(sorted(seen)[: len(seen) - SEEN_KEPT])
        self.holes.get(tp, set()).discard(offset)
        last = self.last.get(tp)
        self.last[tp] = offset if last is None else max(last, offset)
        if last is not None:
            expected = max(last + 1, self._committed(tp))
            if offset > expected:
                log.warning("%s skipped offsets %d..%d: fetching them again", tp, expected, offset)
                self.holes.setdefault(tp, set()).update(range(expected, offset))
                await self.seek(tp, expected)
        return True

    async def seek(self, tp: TP, offset: int) -> None:
        """Seek in the consumer's own thread and wait for the position (Faust's `seek`
        calls the consumer from this loop, and its position may not move)."""
        seek_wait = getattr(self.app.consumer, "seek_wait", None)
        if seek_wait is not None:
            await seek_wait({tp: offset})
        else:
            await self.app.consumer.seek(tp, offset)

    def waiting(self) -> None:
        """The agent waits for its next event (not for a slot)."""
        self.idle_since = time.monotonic()

    def behind(self) -> dict[TP, int]:
        """Owned request partitions with a hole still open, or holding records past the
        next one expected while the agent waits: where to fetch from."""
        consumer = self.app.consumer
        owned = {tp for tp in consumer.assignment() if tp.topic == self.topic}
        for tp in set(self.holes) - owned:  # another worker owns it now
            del self.holes[tp]
        out = {tp: min(holes) for tp, holes in self.holes.items() if holes}
        idle = self.idle_since
        if idle is None or time.monotonic() - idle < STALL_S:
            return out
        for tp in owned - set(out):
            last = self.last.get(tp)
            start = max(last + 1 if last is not None else 0, self._committed(tp))
            end = consumer.highwater(tp)
            if end is not None and end > start:
                out[tp] = start
        return out

    async def watch(self) -> None:
        """Runs beside the agent: every `STALL_S`, seeks back the partitions behind."""
        while True:
            await asyncio.sleep(STALL_S)
            if self.app.rebalancing:
                continue
            for tp, offset in self.behind().items():
                log.warning("%s: records from %d not passed on yet: fetching them", tp, offset)
                await self.seek(tp, offset)
            if self.idle_since is not None:
                self.idle_since = time.monotonic()
