"""One tenant's budget record in the ledger table: counters, holds, settled calls, window.

Why holds are stored with the counters, not kept in memory: the worker that
owns a tenant's partition decides for calls made by every worker. When that
owner dies, the next one restores this record from the changelog and must
still see the calls admitted but not yet settled, or it would admit their
share a second time. A hold is a lease: one not settled by `expires_at` is
charged at its reserved amount (see `QuotaLedger.expire`).

Settled call ids are remembered for `SETTLED_MEMORY_S`, so a settlement
replayed (a resend, or ops processed again after a crash) never charges twice
and a request processed again finds its call already paid for.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

SETTLED_MEMORY_S = 3600.0
"""How long a settled call id is remembered. Replays come from resends (seconds)
and from ops processed again after an owner's crash (one commit interval, plus
a rebalance); an hour covers both with room to spare."""


@dataclass(slots=True)
class Hold:
    """An admitted call's worst case, held until it settles or its lease ends."""

    tokens: int
    expires_at: float
    since: float = 0.0
    """When the call was first held: every run of the call reports its usage at this time,
    so the runs' records share one `llm_usage` key and collapse into one row."""


@dataclass(slots=True)
class TenantBudget:
    """The record the ledger keeps per tenant (table value: `to_json()`)."""

    month: str = ""
    tokens: int = 0
    day: str = ""
    calls: int = 0
    holds: dict[str, Hold] = field(default_factory=dict)
    settled: dict[str, float] = field(default_factory=dict)
    # request id -> when it was admitted into the sliding rate window
    window: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_json(cls, raw: Mapping[str, Any] | None) -> TenantBudget:
        """The record as stored (a missing or foreign one reads as empty)."""
        if not raw:
            return cls()
        holds = {
            str(call): Hold(
                int(h.get("tokens", 0)),
                float(h.get("expires_at", 0.0)),
                float(h.get("since", 0.0)),
            )
            for call, h in dict(raw.get("holds") or {}).items()
            if isinstance(h, Mapping)
        }
        return cls(
            month=str(raw.get("month", "")),
            tokens=int(raw.get("tokens", 0)),
            day=str(raw.get("day", "")),
            calls=int(raw.get("calls", 0)),
            holds=holds,
            settled={str(k): float(v) for k, v in dict(raw.get("settled") or {}).items()},
            window=_window(raw.get("window")),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "month": self.month,
            "tokens": self.tokens,
            "day": self.day,
            "calls": self.calls,
            "holds": {
                k: {"tokens": h.tokens, "expires_at": h.expires_at, "since": h.since}
                for k, h in self.holds.items()
            },
            "settled": dict(self.settled),
            "window": dict(self.window),
        }

    def roll(self, month: str, day: str) -> None:
        """Start the counters over when their UTC month or day has passed."""
        if self.month != month:
            self.month, self.tokens = month, 0
        if self.day != day:
            self.day, self.calls = day, 0

    @property
    def held_tokens(self) -> int:
        return sum(h.tokens for h in self.holds.values())

    @property
    def held_calls(self) -> int:
        return len(self.holds)

    def forget_before(self, settled_since: float, window_since: float) -> None:
        """Drop settled ids and window entries too old to matter."""
        self.settled = {k: t for k, t in self.settled.items() if t >= settled_since}
        self.window = {k: t for k, t in self.window.items() if t > window_since}


def _window(raw: Any) -> dict[str, float]:
    """The window as stored; the earlier format (a list of times) gets synthetic ids."""
    if isinstance(raw, Mapping):
        return {str(k): float(v) for k, v in raw.items()}
    if isinstance(raw, list):
        return {f"legacy-{i}": float(t) for i, t in enumerate(raw) if isinstance(t, int | float)}
    return {}


@dataclass(frozen=True, slots=True)
class Periods:
    """The UTC month and day a moment falls in, and seconds until each ends."""

    month: str
    day: str
    day_resets_in: float
    month_resets_in: float

    @classmethod
    def at(cls, now: float) -> Periods:
        t = dt.datetime.fromtimestamp(now, tz=dt.UTC)
        next_day = (t + dt.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        first = t.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        next_month = (first + dt.timedelta(days=32)).replace(day=1)
        return cls(
            t.strftime("%Y-%m"),
            t.strftime("%Y-%m-%d"),
            (next_day - t).total_seconds(),
            (next_month - t).total_seconds(),
        )
