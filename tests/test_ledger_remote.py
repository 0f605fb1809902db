"""The ledger over Kafka: a real worker owns the budgets, a `RemoteLedger` asks it.

The same operations as the book's tests, through `quota.ops`/`quota.replies`
and the owner's changelog-backed table: holds, idempotent settlement, status,
and a worker restart that keeps every counter and hold (the next owner
restores them from the changelog).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Iterator

import pytest
from worker_proc import WorkerProcess

from loglytics.embedded.stack import StackState
from loglytics.kafka_clients import KafkaConnection
from loglytics.ledger import RemoteLedger
from loglytics.providers import QuotaExceeded
from loglytics.settings import load_settings

PARTITIONS = 4


@pytest.fixture(scope="module")
def owner(stack: StackState, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerProcess]:
    worker = WorkerProcess(
        stack,
        tmp_path_factory.mktemp("ledger"),
        topic_partitions=PARTITIONS,
        free_tokens_per_month=1000,
    )
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()


def connection(stack: StackState) -> KafkaConnection:
    return KafkaConnection.from_settings(
        load_settings(kafka_bootstrap_servers=stack.kafka, kafka_embedded=True)
    )


async def _round_trips(stack: StackState, tenant: str) -> list[float]:
    ledger = RemoteLedger(connection(stack), partitions=PARTITIONS, give_up_after=60.0)
    await ledger.start()
    try:
        await ledger.status(tenant, "free")  # the owner is assigned and answering
        times = []
        for n in range(30):
            began = time.perf_counter()
            held = await ledger.reserve(tenant, "free", 10, call_id=f"rt-{n}", lease_s=60)
            times.append(time.perf_counter() - began)
            await ledger.settle(held, 1)
        return times
    finally:
        await ledger.stop()


def test_reserve_and_settle_round_trips_through_the_owner(
    stack: StackState, owner: WorkerProcess
) -> None:
    times = asyncio.run(_round_trips(stack, "ledger-rt"))
    print(f"reserve round trip p50 {statistics.median(times) * 1000:.1f} ms")
    status = asyncio.run(_status(stack, "ledger-rt"))
    assert (status.tokens, status.calls, status.held_calls) == (30, 30, 0)


async def _status(stack: StackState, tenant: str):  # type: ignore[no-untyped-def]
    ledger = RemoteLedger(connection(stack), partitions=PARTITIONS, give_up_after=60.0)
    await ledger.start()
    try:
        return await ledger.status(tenant, "free")
    finally:
        await ledger.stop()


async def _exhaust(stack: StackState, tenant: str) -> tuple[int, int]:
    """Concurrent reservations of 300 against 1,000 tokens; replayed settlements."""
    ledger = RemoteLedger(connection(stack), partitions=PARTITIONS, give_up_after=60.0)
    await ledger.start()
    try:
        results = await asyncio.gather(
            *(ledger.reserve(tenant, "free", 300, call_id=f"ex-{n}") for n in range(10)),
            return_exceptions=True,
        )
        admitted = [r for r in results if not isinstance(r, BaseException)]
        refused = [r for r in results if isinstance(r, QuotaExceeded)]
        for held in admitted:
            await ledger.settle(held, 300)
            await ledger.settle(held, 300)  # a replayed settlement
        status = await ledger.status(tenant, "free")
        assert len(admitted) + len(refused) == 10
        return len(admitted), status.tokens
    finally:
        await ledger.stop()


def test_concurrent_reservations_overrun_by_at_most_one_and_settle_once(
    stack: StackState, owner: WorkerProcess
) -> None:
    admitted, charged = asyncio.run(_exhaust(stack, "ledger-ex"))
    assert admitted == 4  # 0, 300, 600, 900 < 1000: the fourth is the one allowed overrun
    assert charged == 1200


def test_holds_and_counters_survive_the_owner_restarting(
    stack: StackState, owner: WorkerProcess
) -> None:
    async def before() -> None:
        ledger = RemoteLedger(connection(stack), partitions=PARTITIONS, give_up_after=60.0)
        await ledger.start()
        try:
            await ledger.settle(await ledger.reserve("ledger-rs", "free", 50, call_id="a"), 40)
            await ledger.reserve("ledger-rs", "free", 70, call_id="b", lease_s=600)
        finally:
            await ledger.stop()

    asyncio.run(before())
    owner.kill()  # no clean shutdown: the next owner has only the changelog
    owner.start()
    status = asyncio.run(_status(stack, "ledger-rs"))
    assert (status.tokens, status.calls, status.held_tokens, status.held_calls) == (40, 1, 70, 1)
