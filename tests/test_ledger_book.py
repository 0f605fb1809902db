"""The ledger's book: leases, idempotent settlement, call ids that survive a replay."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loglytics.providers import LocalLedger, QuotaExceeded, QuotaLedger, RateLimited, RateWindow
from loglytics.providers.budget import TenantBudget
from loglytics.providers.ledger import apply
from loglytics.schemas import LedgerOp

NOON = dt.datetime(2025, 3, 31, 12, 0, tzinfo=dt.UTC).timestamp()


class Clock:
    def __init__(self, t: float = NOON) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def book(state: dict[str, dict[str, Any]], clock: Clock, tokens: int = 1000) -> QuotaLedger:
    return QuotaLedger(state, lambda tier: (tokens, 100), clock=clock, rate=RateWindow(3, 60))


def test_an_unsettled_hold_is_charged_at_its_reserved_amount_when_its_lease_ends() -> None:
    clock, state = Clock(), dict[str, dict[str, Any]]()
    ledger = book(state, clock)
    ledger.reserve("acme", "free", 400, call_id="r1:1", lease_s=30)
    assert ledger.status("acme", "free").held_tokens == 400
    clock.t += 31  # its worker died: nobody settles it
    status = ledger.status("acme", "free")
    assert (status.held_tokens, status.tokens, status.calls) == (0, 400, 1)


def test_a_call_made_again_takes_over_its_hold_and_is_charged_once() -> None:
    clock, state = Clock(), dict[str, dict[str, Any]]()
    first, second = book(state, clock), book(state, clock)  # two owners, one after the other
    first.reserve("acme", "free", 400, call_id="r1:1", lease_s=30)
    again = second.reserve("acme", "free", 400, call_id="r1:1", lease_s=30)
    assert second.status("acme", "free").held_calls == 1
    second.settle(again, 150)
    second.settle(again, 150)
    assert second.usage("acme")["tokens"] == 150 and second.usage("acme")["calls"] == 1
    paid = second.reserve("acme", "free", 400, call_id="r1:1")  # a third run of the request
    assert paid.already_settled
    second.settle(paid, 999)
    assert second.usage("acme")["tokens"] == 150


def test_a_call_whose_lease_ended_is_not_charged_again_when_it_is_made_again() -> None:
    clock, state = Clock(), dict[str, dict[str, Any]]()
    ledger = book(state, clock)
    ledger.reserve("acme", "free", 400, call_id="r1:1", lease_s=30)
    clock.t += 60
    late = ledger.reserve("acme", "free", 400, call_id="r1:1", lease_s=30)
    ledger.settle(late, 120)
    assert late.already_settled and ledger.usage("acme")["tokens"] == 400


def test_released_calls_are_not_remembered_as_paid() -> None:
    clock, state = Clock(), dict[str, dict[str, Any]]()
    ledger = book(state, clock)
    ledger.release(ledger.reserve("acme", "free", 400, call_id="r1:1"))
    retry = ledger.reserve("acme", "free", 400, call_id="r1:1")
    assert not retry.already_settled and ledger.status("acme", "free").held_tokens == 400


def test_a_request_admitted_again_counts_once_in_the_window() -> None:
    ledger = book({}, Clock())
    for _ in range(5):
        ledger.admit_request("acme", "req-1")
    ledger.admit_request("acme", "req-2")
    ledger.admit_request("acme", "req-3")
    with pytest.raises(RateLimited):
        ledger.admit_request("acme", "req-4")
    assert ledger.rate_status("acme").used == 3


def test_settled_ids_are_forgotten_after_an_hour() -> None:
    clock, state = Clock(), dict[str, dict[str, Any]]()
    ledger = book(state, clock, tokens=10**9)
    for n in range(50):
        ledger.settle(ledger.reserve("acme", "free", 1, call_id=f"r{n}:1"), 1)
    clock.t += 3601
    ledger.settle(ledger.reserve("acme", "free", 1, call_id="late:1"), 1)
    assert list(TenantBudget.from_json(state["acme"]).settled) == ["late:1"]


def test_the_earlier_window_format_still_reads() -> None:
    budget = TenantBudget.from_json({"month": "2025-03", "tokens": 5, "window": [NOON - 1.0]})
    assert budget.tokens == 5 and list(budget.window.values()) == [NOON - 1.0]


@settings(max_examples=60, deadline=None)
@given(
    limit=st.integers(0, 3000),
    sizes=st.lists(st.integers(1, 400), min_size=1, max_size=40),
    replays=st.lists(st.integers(0, 39), max_size=40),
    spend=st.floats(0.0, 1.0),
)
def test_replayed_ops_never_charge_twice_and_the_overrun_is_at_most_one_call(
    limit: int, sizes: list[int], replays: list[int], spend: float
) -> None:
    """Ops delivered twice (a resend, or processing again after a crash) change nothing."""
    ledger = LocalLedger(book({}, Clock(), tokens=limit))

    async def run() -> int:
        admitted = []
        for n, size in enumerate(sizes):
            try:
                admitted.append(await ledger.reserve("t", "free", size, call_id=f"c{n}"))
            except QuotaExceeded:
                continue
        for res in admitted:
            await ledger.settle(res, int(res.tokens * spend))
        for n in replays:  # the same calls again: reserve finds them paid, settle is a no-op
            if n < len(admitted):
                res = admitted[n]
                again = await ledger.reserve("t", "free", res.tokens, call_id=res.id)
                await ledger.settle(again, res.tokens)
                await ledger.settle(res, res.tokens)
        return (await ledger.status("t", "free")).tokens

    charged = asyncio.run(run())
    assert charged == sum(int(r * spend) for r in _admitted_sizes(sizes, limit))
    assert charged <= limit + max(sizes)


def _admitted_sizes(sizes: list[int], limit: int) -> list[int]:
    """The sizes admitted in order when each holds its size until all are settled."""
    held, admitted = 0, []
    for size in sizes:
        if held < limit:
            admitted.append(size)
            held += size
    return admitted


def test_a_malformed_op_is_refused_by_its_schema() -> None:
    with pytest.raises(ValueError):
        LedgerOp.model_validate({"kind": "steal", "op_id": "x", "tenant": "acme"})
    reply = apply(book({}, Clock()), LedgerOp(kind="status", op_id="s", tenant="acme"))
    assert reply.ok and reply.status is not None and reply.status.tokens == 0
