"""What the agents share inside one worker: the LLM pool, the ClickHouse sink, tenants, quotas.

Tenants and quotas are global tables: every worker must know every tenant
(requests for a tenant arrive on any partition) and admit calls against the
same counters. The `tenants` table's changelog *is* the compacted `tenants`
topic, so `loglytics tenants add` (a plain producer) is all it takes to
register a tenant, and the ClickHouse mirror follows each changelog event.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from faust.types import StreamT
from mode import Service
from prometheus_client import CollectorRegistry

from loglytics.agents.deadletters import dead_letter
from loglytics.app import app
from loglytics.providers import LLMPool, QuotaLedger
from loglytics.schemas import DecodeError, TenantRecord, UsageRecord
from loglytics.settings import Settings, Tier, get_settings
from loglytics.storage.client import open_client
from loglytics.storage.schema import migrate
from loglytics.storage.sink import ClickHouseSink
from loglytics.topics import tenants_topic, usage_topic

log = logging.getLogger(__name__)


# tenant -> TenantRecord bytes, on every worker. Fed by `tenants_agent` from the
# compacted `tenants` topic (a GlobalTable whose changelog is a foreign topic
# stalls Faust's partition assignment, so the topic feeds the table instead).
tenant_table = app.GlobalTable("tenants", default=None, key_type=bytes, value_type=bytes)

quota_table = app.GlobalTable("quotas", default=None, key_type=bytes)


class _QuotaState:
    """The ledger's MutableMapping view of the quota table (str keys, dict values)."""

    def __getitem__(self, tenant: str) -> dict[str, Any]:
        value = quota_table.get(tenant.encode())
        if value is None:
            raise KeyError(tenant)
        return dict(value)

    def __setitem__(self, tenant: str, value: dict[str, Any]) -> None:
        quota_table[tenant.encode()] = value

    def __delitem__(self, tenant: str) -> None:
        del quota_table[tenant.encode()]

    def __iter__(self) -> Any:
        return (k.decode() for k in quota_table)

    def __len__(self) -> int:
        return len(quota_table)

    def get(self, tenant: str, default: Any = None) -> Any:
        try:
            return self[tenant]
        except KeyError:
            return default

    def __contains__(self, tenant: object) -> bool:
        return isinstance(tenant, str) and tenant.encode() in quota_table


class Runtime(Service):
    """Started with the worker (a Faust extra service); agents `await runtime.ready()` first,
    since Faust starts extra services only after recovery, possibly after agents resume."""

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.settings = settings
        self.sink: ClickHouseSink | None = None
        self.client: Any = None
        self.pool: LLMPool | None = None
        self.registry = CollectorRegistry()
        self._ready = asyncio.Event()
        self._lock = asyncio.Lock()

    async def ready(self) -> Runtime:
        if not self._ready.is_set():
            async with self._lock:
                if not self._ready.is_set():
                    await self._start()
        return self

    async def _start(self) -> None:
        self.client = await asyncio.to_thread(open_client, self.settings.clickhouse_dsn)
        await asyncio.to_thread(migrate, self.client)
        self.sink = ClickHouseSink(self.client)
        await self.sink.start()
        self.pool = LLMPool.from_settings(
            self.settings,
            ledger=QuotaLedger(_QuotaState(), self.settings.tier_limits),  # type: ignore[arg-type]
            on_usage=self.record_usage,
            registry=self.registry,
        )
        await self.pool.start()
        self._ready.set()
        chains = {t: self.pool.tier_chain(t) for t in ("free", "pro")}
        log.info("runtime ready: ClickHouse %s, LLM tiers %s", self.settings.clickhouse_dsn, chains)

    async def on_start(self) -> None:
        await self.ready()

    async def on_stop(self) -> None:
        if self.pool is not None:
            await self.pool.stop()
        if self.sink is not None:
            await self.sink.stop()
        if self.client is not None:
            await asyncio.to_thread(self.client.close)

    async def record_usage(self, record: UsageRecord) -> None:
        """Every LLM call goes to the `usage` topic; the usage agent stores it in ClickHouse."""
        await usage_topic.send(key=record.tenant.encode(), value=record.to_bytes())

    def tenant(self, tenant: str) -> TenantRecord | None:
        raw = tenant_table.get(tenant.encode())
        if not raw:
            return None
        try:
            return TenantRecord.from_bytes(raw)
        except DecodeError:
            return None

    def tier_of(self, tenant: str) -> Tier:
        """Unknown tenants (logs may arrive before registration) are served as free tier."""
        record = self.tenant(tenant)
        return record.tier if record is not None else "free"


runtime = Runtime(get_settings())
app.service(runtime)  # type: ignore[arg-type]


@app.agent(tenants_topic)
async def tenants_agent(stream: StreamT[bytes]) -> None:
    """Keep every worker's tenant table and the ClickHouse mirror in step with the topic."""
    async for event in stream.events():
        value = event.message.value
        key = event.message.key
        try:
            record = TenantRecord.from_bytes(value if isinstance(value, bytes) else b"")
        except DecodeError as exc:
            await dead_letter("tenants", exc.reason, event)
            continue
        if isinstance(key, bytes) and key != record.tenant.encode():
            await dead_letter("tenants", "message key does not match the tenant id", event)
            continue
        tenant_table[record.tenant.encode()] = record.to_bytes()
        rt = await runtime.ready()
        if rt.sink is not None:
            rt.sink.add_tenant(record)
