"""Per-tenant quotas: tokens per UTC month, calls per UTC day, requests per sliding window.

Why reserve-then-settle: checking "used < limit" after the fact lets twenty
concurrent calls each see the same headroom and overrun twenty-fold. Here a
call is admitted only while `used + held < limit`, and it holds its worst case
(prompt estimate + max_tokens), so concurrent calls can overrun a limit by at
most the one call admitted last. `settle` then charges what the provider
actually reported.

`QuotaLedger` is the book: the decisions over one mapping of tenant records
(`TenantBudget`). In a worker that mapping is the tenant's partition of the
ledger table, and only that partition's owner applies operations to it (see
`loglytics.ledger`); tests and single-process tools pass a dict. Every
decision is synchronous: a check and its write happen with no await between,
so two operations can never both take the last unit of headroom.

Holds are leases. A hold not settled by its expiry is charged at its reserved
amount, not released: its caller died after being admitted, whether the model
ran is unknown, and charging the worst case keeps the limit an upper bound
(a crash loop cannot spend tokens uncounted). A request processed again
reuses its call ids, so it takes over its own hold, or finds it already
charged and is not charged twice.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from loglytics.providers.budget import SETTLED_MEMORY_S, Hold, Periods, TenantBudget
from loglytics.providers.errors import QuotaExceeded, RateLimited
from loglytics.schemas import LedgerStatus
from loglytics.settings import Settings, Tier

Limits = Callable[[Tier], tuple[int, int]]
"""tier -> (tokens per month, calls per day), e.g. `Settings.tier_limits`."""

DEFAULT_LEASE_S = 600.0
"""A hold's lease when the caller gives none: longer than any call may take."""


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
    """An admitted call's hold on the tenant's budget until `settle` or `release`.

    `already_settled` marks a call id that was paid for before (a request
    processed again): settling or releasing it changes nothing.
    """

    id: str
    tenant: str
    tier: Tier
    tokens: int
    already_settled: bool = False
    since: float = 0.0
    """When the ledger first held this call id (0.0: not known)."""


class QuotaLedger:
    """Admission and accounting of tokens, calls and requests per tenant (the book)."""

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

    def limits(self, tier: Tier) -> tuple[int, int]:
        """(tokens per month, calls per day) of a tier, as `reserve` enforces them."""
        return self._limits(tier)

    def _load(self, tenant: str, now: float) -> TenantBudget:
        """The tenant's record, rolled to the current periods, expired holds charged."""
        budget = TenantBudget.from_json(self._state.get(tenant))
        periods = Periods.at(now)
        budget.roll(periods.month, periods.day)
        self._expire(budget, now)
        return budget

    def _save(self, tenant: str, budget: TenantBudget, now: float) -> None:
        window = self.rate.seconds if self.rate is not None else 0.0
        budget.forget_before(now - SETTLED_MEMORY_S, now - window)
        self._state[tenant] = budget.to_json()

    @staticmethod
    def _expire(budget: TenantBudget, now: float) -> None:
        """Charge every hold whose lease has ended at its reserved amount (see the module)."""
        for call_id, hold in list(budget.holds.items()):
            if hold.expires_at <= now:
                del budget.holds[call_id]
                budget.tokens += hold.tokens
                budget.calls += 1
                budget.settled[call_id] = now

    def rate_status(self, tenant: str) -> RateStatus:
        rate = self.rate
        if rate is None:
            return RateStatus(used=0, limit=None, window_seconds=0.0, resets_in=0.0)
        now = self._clock()
        times = self._window_times(self._load(tenant, now), now)
        full = len(times) >= rate.requests
        resets_in = max(0.0, times[-rate.requests] + rate.seconds - now) if full else 0.0
        return RateStatus(len(times), rate.requests, rate.seconds, resets_in)

    def _window_times(self, budget: TenantBudget, now: float) -> list[float]:
        """The admitted request times still inside the window, oldest first."""
        rate = self.rate
        if rate is None:
            return []
        return sorted(t for t in budget.window.values() if t > now - rate.seconds)

    def admit_request(self, tenant: str, request_id: str = "") -> None:
        """Count one request against the tenant's window, or raise `RateLimited`.

        A request id already in the window is admitted again without counting
        (the request is being processed a second time).
        """
        rate = self.rate
        if rate is None:
            return
        now = self._clock()
        budget = self._load(tenant, now)
        if request_id and request_id in budget.window:
            return
        times = self._window_times(budget, now)
        if len(times) >= rate.requests:
            wait = times[-rate.requests] + rate.seconds - now
            raise RateLimited(
                f"Rate limit exceeded: {rate.requests} requests per {rate.seconds:g}s",
                retry_after=max(0.001, wait),
                limit=rate.requests,
            )
        budget.window[request_id or f"local-{uuid.uuid4().hex}"] = now
        self._save(tenant, budget, now)

    def usage(self, tenant: str) -> dict[str, Any]:
        """The tenant's current period counters (rolled over if the period changed)."""
        budget = self._load(tenant, self._clock())
        return {
            "month": budget.month,
            "tokens": budget.tokens,
            "day": budget.day,
            "calls": budget.calls,
        }

    def status(self, tenant: str, tier: Tier) -> LedgerStatus:
        """Everything `usage` reports, with the holds, the limits and when each resets."""
        now = self._clock()
        budget = self._load(tenant, now)
        periods = Periods.at(now)
        token_limit, call_limit = self._limits(tier)
        rate = self.rate_status(tenant)
        return LedgerStatus(
            month=budget.month,
            tokens=budget.tokens,
            day=budget.day,
            calls=budget.calls,
            token_limit=token_limit,
            call_limit=call_limit,
            held_tokens=budget.held_tokens,
            held_calls=budget.held_calls,
            day_resets_in=periods.day_resets_in,
            month_resets_in=periods.month_resets_in,
            rate_used=rate.used,
            rate_limit=rate.limit,
            rate_window_s=rate.window_seconds,
            rate_resets_in=rate.resets_in,
        )

    def reserve(
        self,
        tenant: str,
        tier: Tier,
        tokens: int,
        *,
        call_id: str = "",
        lease_s: float = DEFAULT_LEASE_S,
    ) -> Reservation:
        """Admit a call that may use up to `tokens`, or raise `QuotaExceeded` (nothing held).

        A call id that already holds is renewed; one already settled is
        admitted as `already_settled` (paid for, nothing more to charge).
        """
        now = self._clock()
        budget = self._load(tenant, now)
        held = budget.holds.get(call_id) if call_id else None
        if held is not None:
            held.expires_at = max(held.expires_at, now + lease_s)
            self._save(tenant, budget, now)
            return Reservation(call_id, tenant, tier, held.tokens, since=held.since)
        if call_id and call_id in budget.settled:
            return Reservation(call_id, tenant, tier, 0, already_settled=True)
        self._check(budget, tenant, tier, Periods.at(now))
        reservation = Reservation(
            call_id or f"local-{uuid.uuid4().hex}", tenant, tier, max(0, tokens), since=now
        )
        budget.holds[reservation.id] = Hold(reservation.tokens, now + lease_s, since=now)
        self._save(tenant, budget, now)
        return reservation

    def _check(self, budget: TenantBudget, tenant: str, tier: Tier, periods: Periods) -> None:
        token_limit, call_limit = self._limits(tier)
        if budget.calls + budget.held_calls >= call_limit:
            raise QuotaExceeded(
                f"tenant {tenant!r} reached its {tier} limit of {call_limit} calls per day",
                retry_after=periods.day_resets_in,
                limit=call_limit,
            )
        if budget.tokens + budget.held_tokens >= token_limit:
            raise QuotaExceeded(
                f"tenant {tenant!r} reached its {tier} limit of {token_limit} tokens per month",
                retry_after=periods.month_resets_in,
                limit=token_limit,
            )

    def settle(
        self, reservation: Reservation, actual_tokens: int, *, count_call: bool = True
    ) -> None:
        """Charge what the call really used and drop its hold; idempotent per call id."""
        if reservation.already_settled:
            return
        now = self._clock()
        budget = self._load(reservation.tenant, now)
        if reservation.id in budget.settled:
            return
        # A hold lost with its record is charged all the same: tokens were spent.
        budget.holds.pop(reservation.id, None)
        # A call that straddled a period boundary is charged to the period it ends in.
        budget.tokens += max(0, actual_tokens)
        budget.calls += 1 if count_call else 0
        budget.settled[reservation.id] = now
        self._save(reservation.tenant, budget, now)

    def release(self, reservation: Reservation) -> None:
        """Drop the hold without charging (the call never reached a model)."""
        if reservation.already_settled:
            return
        now = self._clock()
        budget = self._load(reservation.tenant, now)
        if budget.holds.pop(reservation.id, None) is not None:
            self._save(reservation.tenant, budget, now)
