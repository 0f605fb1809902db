"""models and health: what the worker can serve, answered without an LLM call."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from pydantic import BaseModel, Field

from loglytics.storage.client import Client
from loglytics.tasks.base import TaskContext, TaskResult

CLICKHOUSE_TIMEOUT = 5.0


class ProviderModels(BaseModel):
    model: str = Field(description="the model this worker asks the provider for")
    available: list[str]
    in_tier: bool = Field(description="whether the tenant's tier may use this provider")


class ModelsInfo(BaseModel):
    """The `data` of a models reply."""

    tier: str
    chain: list[str] = Field(description="the tier's providers in fallback order")
    providers: dict[str, ProviderModels]


class ClickHouseHealth(BaseModel):
    ok: bool
    latency_ms: float
    detail: str = ""
    sink: dict[str, Any] = Field(default_factory=dict)


class HealthReport(BaseModel):
    """The `data` of a health reply: each provider's state, the tiers, and ClickHouse."""

    ok: bool
    tier: str
    providers: dict[str, dict[str, Any]]
    tiers: dict[str, dict[str, Any]]
    clickhouse: ClickHouseHealth


async def models(ctx: TaskContext) -> TaskResult:
    chain = ctx.pool.tier_chain(ctx.tier)
    found = await ctx.pool.models()
    info = ModelsInfo(
        tier=ctx.tier,
        chain=chain,
        providers={
            name: ProviderModels(
                model=provider.model, available=found.get(name, []), in_tier=name in chain
            )
            for name, provider in ctx.pool.providers.items()
        },
    )
    lines = [f"tier {info.tier}: " + (" → ".join(chain) or "no providers")]
    for name, p in info.providers.items():
        lines.append(f"{name}: {p.model} (available: {', '.join(p.available) or 'none'})")
    return TaskResult(text="\n".join(lines), data=info.model_dump(mode="json"))


async def _clickhouse(ctx: TaskContext) -> ClickHouseHealth:
    began = time.perf_counter()

    def ping(client: Client) -> Any:
        return client.query("SELECT 1").result_rows

    try:
        async with asyncio.timeout(CLICKHOUSE_TIMEOUT):
            await ctx.storage.run(ping)
    except Exception as exc:  # health reports failures, it does not raise them
        ok, detail = False, f"{type(exc).__name__}: {exc}"[:300]
    else:
        ok, detail = True, ""
    latency = (time.perf_counter() - began) * 1000.0
    return ClickHouseHealth(ok=ok, latency_ms=latency, detail=detail, sink=ctx.storage.status())


async def health(ctx: TaskContext) -> TaskResult:
    snapshot, clickhouse = await asyncio.gather(ctx.pool.health(), _clickhouse(ctx))
    report = HealthReport(
        ok=bool(snapshot["ok"]) and clickhouse.ok,
        tier=ctx.tier,
        providers=snapshot["providers"],
        tiers=snapshot["tiers"],
        clickhouse=clickhouse,
    )
    lines = [f"overall: {'ok' if report.ok else 'degraded'}"]
    for name, p in report.providers.items():
        state = "ok" if p.get("ok") else f"down ({p.get('detail', '')})"
        lines.append(f"{name}: {state}, circuit {p.get('circuit')}")
    lines.append(f"clickhouse: {'ok' if clickhouse.ok else 'down: ' + clickhouse.detail}")
    return TaskResult(text="\n".join(lines), data=report.model_dump(mode="json"))
