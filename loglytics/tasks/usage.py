"""usage: the caller's tier, its counters and limits, read from the ledger that enforces them.

Why from the ledger and not from ClickHouse: the ledger is what admits or
refuses the next call, so what this reports is what the next request meets
(the usage table lags by the sink's batching). The request asking counts in
the rate window like every other request: it is reported included.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, Field

from loglytics.tasks.base import TaskContext, TaskError, TaskResult


class Counter(BaseModel):
    """One limited counter: how much is used, the limit, and when it starts again."""

    used: int = Field(ge=0, description="used in the current period (or window)")
    limit: int | None = Field(description="the limit; null when not limited")
    resets_in_seconds: float = Field(ge=0, description="seconds until the counter resets")
    resets_at: datetime = Field(description="when it resets (UTC)")


class RateWindowStatus(Counter):
    window_seconds: float = Field(ge=0, description="the sliding window's length")


class UsageReport(BaseModel):
    """GET /api/v1/users/me: who the key belongs to and where it stands."""

    tenant: str
    tier: str
    tokens_this_month: Counter
    api_calls_today: Counter
    rate_limit: RateWindowStatus


async def usage(ctx: TaskContext) -> TaskResult:
    ledger = ctx.pool.ledger
    if ledger is None:
        raise TaskError("internal", "this worker keeps no quota ledger")
    now = datetime.now(UTC)
    status = await ledger.status(ctx.tenant, ctx.tier)
    to_day, to_month = status.day_resets_in, status.month_resets_in

    def at(seconds: float) -> datetime:
        return now + timedelta(seconds=seconds)

    report = UsageReport(
        tenant=ctx.tenant,
        tier=ctx.tier,
        tokens_this_month=Counter(
            used=status.tokens,
            limit=status.token_limit,
            resets_in_seconds=to_month,
            resets_at=at(to_month),
        ),
        api_calls_today=Counter(
            used=status.calls,
            limit=status.call_limit,
            resets_in_seconds=to_day,
            resets_at=at(to_day),
        ),
        rate_limit=RateWindowStatus(
            used=status.rate_used,
            limit=status.rate_limit,
            resets_in_seconds=status.rate_resets_in,
            resets_at=at(status.rate_resets_in),
            window_seconds=status.rate_window_s,
        ),
    )
    text = (
        f"{ctx.tenant} ({ctx.tier}): {status.tokens}/{status.token_limit} tokens this month, "
        f"{status.calls}/{status.call_limit} calls today, "
        f"{status.rate_used}/{status.rate_limit if status.rate_limit is not None else '-'}"
        " requests in the window"
    )
    return TaskResult(text=text, data=report.model_dump(mode="json"))
