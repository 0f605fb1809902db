"""Unit: the request agent's offsets (loglytics.serving.offsets) without a broker.

`Refetch` must notice a hole Faust left in a request partition, seek back to it until
its records come, and skip the records it passed on before when they come again;
`Holds` must let go, at a rebalance, of the events read before it and only those.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, cast

import faust
from faust.types import TP, EventT, StreamT

from loglytics.serving import offsets
from loglytics.serving.offsets import Holds, Refetch

TOPIC = "llm.requests"
P0 = TP(TOPIC, 0)


@dataclass
class FakeMessage:
    tp: TP
    offset: int
    generation_id: int = 1
    acked: bool = False


@dataclass
class FakeEvent:
    message: FakeMessage


@dataclass
class FakeConsumer:
    owned: set[TP] = field(default_factory=lambda: {P0})
    ends: dict[TP, int] = field(default_factory=dict)
    _committed_offset: dict[TP, int | None] = field(default_factory=dict)
    seeks: list[tuple[TP, int]] = field(default_factory=list)

    def assignment(self) -> set[TP]:
        return self.owned

    def highwater(self, tp: TP) -> int | None:
        return self.ends.get(tp)

    async def seek_wait(self, partitions: dict[TP, int]) -> None:
        self.seeks.extend(partitions.items())


@dataclass
class FakeApp:
    consumer: FakeConsumer = field(default_factory=FakeConsumer)
    rebalancing: bool = False
    consumer_generation_id: int = 1


def event(offset: int, generation: int = 1) -> EventT[bytes]:
    return cast(EventT[bytes], FakeEvent(FakeMessage(P0, offset, generation)))


def refetch(app: FakeApp) -> Refetch:
    return Refetch(cast(faust.App, app), TOPIC)


def test_a_hole_is_sought_back_and_stays_open_until_its_records_come() -> None:
    app = FakeApp()
    guard = refetch(app)

    async def run() -> list[bool]:
        fresh = [await guard.fresh(event(n)) for n in (0, 1, 2, 7)]  # 3..6 dropped
        assert app.consumer.seeks == [(P0, 3)]
        assert guard.behind() == {P0: 3}  # still open: the watcher seeks again
        fresh += [await guard.fresh(event(n)) for n in (3, 4, 5, 6, 7)]  # 7 comes again
        return fresh

    fresh = asyncio.run(run())
    assert fresh == [True, True, True, True, True, True, True, True, False]
    assert guard.behind() == {}


def test_a_hole_below_the_committed_offset_is_not_one() -> None:
    app = FakeApp()
    app.consumer._committed_offset[P0] = 10  # another owner answered up to 9
    guard = refetch(app)

    async def run() -> None:
        await guard.fresh(event(2))
        await guard.fresh(event(10))

    asyncio.run(run())
    assert app.consumer.seeks == []


def test_a_starving_partition_is_sought_only_once_the_agent_waited() -> None:
    app = FakeApp()
    guard = refetch(app)
    asyncio.run(guard.fresh(event(4)))
    app.consumer.ends[P0] = 9  # records 5..8 exist, none came
    assert guard.behind() == {}  # the agent is busy: nothing to say yet
    guard.waiting()
    guard.idle_since = (guard.idle_since or 0.0) - offsets.STALL_S
    assert guard.behind() == {P0: 5}
    app.consumer.owned = set()  # the partition went to another worker
    assert guard.behind() == {}


@dataclass
class FakeStream:
    acked: list[int] = field(default_factory=list)

    async def ack(self, event: Any) -> bool:
        event.message.acked = True
        self.acked.append(event.message.offset)
        return True


def test_a_rebalance_lets_go_of_the_requests_read_before_it_only() -> None:
    app = FakeApp(consumer_generation_id=1)
    stream = FakeStream()
    holds = Holds(cast(StreamT[bytes], stream))
    old, new = event(1, generation=1), event(2, generation=2)

    async def run() -> None:
        watcher = asyncio.create_task(holds.let_go_on_rebalance(cast(faust.App, app)))
        holds.hold(old)
        await asyncio.sleep(offsets.REBALANCE_POLL_S * 2)
        assert stream.acked == []  # no rebalance: held until answered
        app.rebalancing = True
        app.consumer_generation_id = 2  # assigned; recovery still running
        holds.hold(new)
        await asyncio.sleep(offsets.REBALANCE_POLL_S * 2)
        assert stream.acked == [1]  # the new generation's request waits for its answer
        watcher.cancel()
        await holds.ack(old)  # its answer comes later: acked once only
        await holds.ack(new)

    asyncio.run(run())
    assert stream.acked == [1, 2]
