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

The request rate limit (`RateWindow`: N requests per sliding window) is kept
in the same per-tenant entry: `admit_request` is called once per request where
requests are admitted (the serving stage), before any task runs. The window is
the timestamps of the admitted requests still inside it, so the limit holds
exactly, whichever gateway a request came through; the worker that owns a
tenant's request partition is the one that counts it.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from itertools import count
from typing import Any

from loglytics.providers.errors import QuotaExceeded, RateLimited
from loglytics.settings import Settings, Tier

Limits = Callable[[Tier], tuple[int, int]]
"""tier -> (tokens per month, calls per day), e.g. `Settings.tier_limits`."""


@dataclass(frozen=True, slots=True)
class RateWindow:
    """At most `requests` requests per tenant in any `seconds`-long window."""

    requests: int
    seconds: float

    @classmethod
    def from_settings(cls, settings: Settings) -> RateWindow | None:
        """`RATE_LIMIT_REQUESTS` per `RATE_LIMIT_WINDOW` seconds; None when disabled."""
        if not settings.rate_limit_enabled:
            return None
        return cls(settings.rate_limit_requests, settings.rate_limit_window)


@dataclass(frozen=True, slots=True)
class RateStatus:
    """A tenant's sliding window now: requests in it, the limit, and seconds until one
    more is admitted (0 while under the limit); `limit` is None when rate limiting is off."""

    used: int
    limit: int | None
    window_seconds: float
    resets_in: float


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
        rate: RateWindow | None = None,
    ) -> None:
        self._state = state
        self._limits = limits
        self._clock = clock
        self.rate = rate
        self._in_flight: dict[str, _InFlight] = {}
        self._ids = count(1)

    def limits(self, tier: Tier) -> tuple[int, int]:
        """(tokens per month, calls per day) of a tier, as `reserve` enforces them."""
        return self._limits(tier)

    def resets(self) -> tuple[float, float]:
        """(seconds to the next UTC day, seconds to the next UTC month): when the call and
        the token counters start again."""
        _, _, to_day, to_month = _periods(self._clock())
        return to_day, to_month

    def _window(self, tenant: str, now: float) -> list[float]:
        """The tenant's admitted request times still inside the window, oldest first."""
        rate = self.rate
        if rate is None:
            return []
        stored = self._state.get(tenant) or {}
        times = stored.get("window") or []
        return [float(t) for t in times if isinstance(t, int | float) and t > now - rate.seconds]

    def rate_status(self, tenant: str) -> RateStatus:
        rate = self.rate
        if rate is None:
            return RateStatus(used=0, limit=None, window_seconds=0.0, resets_in=0.0)
        now = self._clock()
        times = self._window(tenant, now)
        full = len(times) >= rate.requests
        resets_in = max(0.0, times[-rate.requests] + rate.seconds - now) if full else 0.0
        return RateStatus(len(times), rate.requests, rate.seconds, resets_in)

    def admit_request(self, tenant: str) -> None:
        """Count one request against the tenant's window, or raise `RateLimited`.

        Synchronous on purpose: the check and the count happen with no await in
        between, so concurrent requests on one worker cannot both take the last slot.
        """
        rate = self.rate
        if rate is None:
            return
        now = self._clock()
        times = self._window(tenant, now)
        if len(times) >= rate.requests:
            wait = times[-rate.requests] + rate.seconds - now
            raise RateLimited(
                f"Rate limit exceeded: {rate.requests} requests per {rate.seconds:g}s",
                retry_after=max(0.001, wait),
                limit=rate.requests,
            )
        stored = dict(self._state.get(tenant) or {})
        stored["window"] = [*times, now]
        self._state[tenant] = stored

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
        stored = self._state.get(reservation.tenant) or {}
        self._state[reservation.tenant] = {**stored, **current}

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
