"""The quota ledger's messages: operations on `quota.ops`, answers on `quota.replies`.

Why messages and not shared memory: every admission decision for a tenant is
made by the one worker that owns the tenant's partition of the ledger table,
so workers, detection and requests ask that owner over Kafka. An operation
carries everything its decision needs (the caller's tier, the call's worst
case, its lease), so the owner needs no other state than its table.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from loglytics.schemas.base import Record

LedgerOpKind = Literal["reserve", "settle", "release", "admit", "status"]
"""reserve a call's worst case; settle it at what it used; release it uncharged;
admit one request into the rate window; report the tenant's counters."""

LedgerError = Literal["", "quota_exceeded", "rate_limited"]


class LedgerOp(Record):
    """One operation on a tenant's budget, keyed by tenant on `quota.ops`.

    `op_id` identifies the message (a resend after a lost reply repeats it);
    `call_id` identifies the LLM call (request id plus its call number), so a
    request processed again after a crash finds its own hold or settlement.
    """

    kind: LedgerOpKind
    op_id: str = Field(min_length=1, max_length=200)
    tenant: str = Field(min_length=1, max_length=64)
    tier: Literal["free", "pro"] = "free"
    call_id: str = Field("", max_length=300)
    # At most a UInt32 per op (what the usage columns hold): sums stay within 64 bits.
    tokens: int = Field(0, ge=0, le=2**32 - 1)
    count_call: bool = True
    lease_s: float = Field(0.0, ge=0.0)
    reply_to: str = Field("", max_length=200)
    sent_at: float = 0.0


class LedgerStatus(Record):
    """A tenant's counters as the owner sees them, with the limits and when they reset."""

    month: str
    tokens: int
    day: str
    calls: int
    token_limit: int
    call_limit: int
    held_tokens: int
    held_calls: int
    day_resets_in: float
    month_resets_in: float
    rate_used: int
    rate_limit: int | None
    rate_window_s: float
    rate_resets_in: float


class LedgerReply(Record):
    """The owner's answer to one `LedgerOp`, keyed by the asker's `reply_to`."""

    op_id: str
    ok: bool
    error: LedgerError = ""
    message: str = ""
    retry_after: float | None = None
    limit: int | None = None
    held: int = 0
    """reserve: the tokens the call holds (a renewed hold keeps its first amount)."""
    already_settled: bool = False
    held_since: float = 0.0
    """reserve: when the call id was first held (the same for every run of the call)."""
    status: LedgerStatus | None = None
