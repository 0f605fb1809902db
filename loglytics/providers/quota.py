"""Per-tenant quotas: tokens per UTC month and calls per UTC day, checked before the call.

Why reserve-then-settle: checking "used < limit" after the fact lets twenty
concurrent calls each see the same headroom and overrun twenty-fold. Here a
call is admitted only while `used + in-flight reservations < limit`, and it
reserves its worst case (prompt estimate + max_tokens), so concurrent calls
can overrun a limit by at most the one call admitted last. `settle` then
charges what the provider actually reported.

State lives in the mapping passed in: the worker passes a Faust table (keyed
by tenant, changelog-backed), tests pass a dict. Faust persists a value only
on `__setitem__`, so every change writes the whole dict back. In-flight
reservations are kept in memory on purpose: after a crash they must vanish,
not pin a tenant's budget forever.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from itertools import count
from typing import Any

from loglytics.providers.errors import QuotaExceeded
from loglytics.settings import Tier

Limits = Callable[[Tier], tuple[int, int]]
"""tier -> (tokens per month, calls per day), e.g. `Settings.tier_limits`."""


@dataclass(frozen=True, slots=True)
class Reservation:
    """An admitted call's hold on the tenant's budget until `settle` or `release`."""

    id: int
    tenant: str
    tier: Tier
    tokens: int
    month: str
    day: str


@dataclass(slots=True)
class _InFlight:
    tokens: int = 0
    calls: int = 0
    ids: set[int] = field(default_factory=set)


def _periods(now: float) -> tuple[str, str, float, float]:
    """(month key, day key, seconds to next UTC day, seconds to next UTC month)."""
    t = dt.datetime.fromtimestamp(now, tz=dt.UTC)
    next_day = (t + dt.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    first = t.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    next_month = (first + dt.timedelta(days=32)).replace(day=1)
    return (
        t.strftime("%Y-%m"),
        t.strftime("%Y-%m-%d"),
        (next_day - t).total_seconds(),
        (next_month - t).total_seconds(),
    )


class QuotaLedger:
    """Admission and accounting of tokens and calls per tenant."""

    def __init__(
        self,
        state: MutableMapping[str, dict[str, Any]],
        limits: Limits,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._state = state
        self._limits = limits
        self._clock = clock
        self._in_flight: dict[str, _InFlight] = {}
        self._ids = count(1)

    def usage(self, tenant: str) -> dict[str, Any]:
        """The tenant's current period counters (rolled over if the period changed)."""
        month, day, _, _ = _periods(self._clock())
        return self._current(tenant, month, day)

    def _current(self, tenant: str, month: str, day: str) -> dict[str, Any]:
        stored = self._state.get(tenant) or {}
        tokens = int(stored.get("tokens", 0)) if stored.get("month") == month else 0
        calls = int(stored.get("calls", 0)) if stored.get("day") == day else 0
        return {"month": month, "tokens": tokens, "day": day, "calls": calls}

    def reserve(self, tenant: str, tier: Tier, tokens: int) -> Reservation:
        """Admit a call that may use up to `tokens`, or raise `QuotaExceeded` (nothing held)."""
        now = self._clock()
        month, day, to_day, to_month = _periods(now)
        token_limit, call_limit = self._limits(tier)
        used = self._current(tenant, month, day)
        flight = self._in_flight.get(tenant) or _InFlight()
        if used["calls"] + flight.calls >= call_limit:
            raise QuotaExceeded(
                f"tenant {tenant!r} reached its {tier} limit of {call_limit} calls per day",
                retry_after=to_day,
                limit=call_limit,
            )
        if used["tokens"] + flight.tokens >= token_limit:
            raise QuotaExceeded(
                f"tenant {tenant!r} reached its {tier} limit of {token_limit} tokens per month",
                retry_after=to_month,
                limit=token_limit,
            )
        reservation = Reservation(next(self._ids), tenant, tier, max(0, tokens), month, day)
        flight.tokens += reservation.tokens
        flight.calls += 1
        flight.ids.add(reservation.id)
        self._in_flight[tenant] = flight
        return reservation

    def settle(
        self, reservation: Reservation, actual_tokens: int, *, count_call: bool = True
    ) -> None:
        """Charge what the call really used and drop its hold; idempotent per reservation."""
        if not self._drop(reservation):
            return
        month, day, _, _ = _periods(self._clock())
        current = self._current(reservation.tenant, month, day)
        # A call that straddled a period boundary is charged to the period it ends in.
        current["tokens"] += max(0, actual_tokens)
        current["calls"] += 1 if count_call else 0
        self._state[reservation.tenant] = current

    def release(self, reservation: Reservation) -> None:
        """Drop the hold without charging (the call never reached a model)."""
        self._drop(reservation)

    def _drop(self, reservation: Reservation) -> bool:
        flight = self._in_flight.get(reservation.tenant)
        if flight is None or reservation.id not in flight.ids:
            return False
        flight.ids.discard(reservation.id)
        flight.tokens -= reservation.tokens
        flight.calls -= 1
        if not flight.ids:
            del self._in_flight[reservation.tenant]
        return True
