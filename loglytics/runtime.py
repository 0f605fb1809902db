"""What a worker's stages share: the LLM pool, the ClickHouse sink, tenants, the ledger.

Every worker must know every tenant (requests for a tenant arrive on any
partition), so each follows the whole compacted `tenants` topic (`TenantView`):
`loglytics tenants add` (a plain producer) is all it takes to register a tenant,
on every worker within a fetch. Quotas are not kept
here: the pool asks the ledger (`loglytics.ledger`), whose owner per tenant
decides for every worker.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import faust
from mode import Service
from prometheus_client import CollectorRegistry

from loglytics.pipeline_metrics import PipelineMetrics
from loglytics.prompts.grounding import GroundingMetrics
from loglytics.providers import Ledger, LLMPool
from loglytics.schemas import TenantRecord, UsageRecord
from loglytics.settings import Settings, Tier
from loglytics.storage.client import open_client
from loglytics.storage.retention import RetentionPolicy, apply_retention
from loglytics.storage.schema import migrate
from loglytics.storage.sink import ClickHouseSink
from loglytics.tenant_view import TenantView

log = logging.getLogger(__name__)


class Runtime(Service):
    """Started with the worker (a Faust extra service); agents `await runtime.ready()` first,
    since Faust starts extra services only after recovery, possibly after agents resume."""

    def __init__(
        self,
        settings: Settings,
        *,
        tenants: TenantView,
        ledger: Ledger,
        usage_topic: faust.TopicT,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.tenants = tenants
        self.ledger = ledger
        self.usage_topic = usage_topic
        self.sink: ClickHouseSink | None = None
        self.client: Any = None
        self.pool: LLMPool | None = None
        self.registry = CollectorRegistry()
        # The pipeline's metrics on the same registry; worker.py hands them to the stages.
        self.metrics = PipelineMetrics(self.registry)
        self.grounding = GroundingMetrics(self.registry)
        self._ready = asyncio.Event()
        self._lock = asyncio.Lock()

    async def ready(self) -> Runtime:
        if not self._ready.is_set():
            async with self._lock:
                if not self._ready.is_set():
                    await self._start()
        return self

    async def _start(self) -> None:
        self.client = await asyncio.to_thread(
            open_client, self.settings.clickhouse_dsn, ca_file=self.settings.clickhouse_ca_file
        )
        await asyncio.to_thread(migrate, self.client)
        policy = RetentionPolicy.from_settings(self.settings)
        await asyncio.to_thread(apply_retention, self.client, policy)
        self.sink = ClickHouseSink(self.client, on_insert=self.metrics.inserted)
        await self.sink.start()
        await self.tenants.start()
        await self.ledger.start()
        self.pool = LLMPool.from_settings(
            self.settings,
            ledger=self.ledger,
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
        await self.ledger.stop()
        await self.tenants.stop()
        if self.sink is not None:
            await self.sink.stop()
        if self.client is not None:
            await asyncio.to_thread(self.client.close)

    async def record_usage(self, record: UsageRecord) -> None:
        """Every LLM call goes to the `usage` topic; the usage agent stores it in ClickHouse.

        Delivered before it returns: the pool settles the call only after its usage is
        on the broker (see `providers.accounting.Booking`)."""
        delivery = await self.usage_topic.send(key=record.tenant.encode(), value=record.to_bytes())
        await delivery

    def tenant(self, tenant: str) -> TenantRecord | None:
        return self.tenants.get(tenant)

    def tier_of(self, tenant: str) -> Tier:
        """Unknown tenants (logs may arrive before registration) are served as free tier."""
        record = self.tenant(tenant)
        return record.tier if record is not None else "free"
