"""Provider health and model listing: periodic probes, the last known state, what is served.

Why probes open circuits: a provider that fails its health check would
otherwise be found dead only by the next caller, who then waits out its
retries; tripping the breaker makes that caller go straight to the next
provider of the tier. Probes are bounded so that a hung server cannot stall
the report.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from loglytics.providers.base import HealthInfo
from loglytics.providers.breaker import CircuitState
from loglytics.providers.errors import ProviderError
from loglytics.providers.metrics import PoolMetrics
from loglytics.providers.slots import ProviderSlot
from loglytics.settings import Tier

log = logging.getLogger(__name__)

PROBE_TIMEOUT = 5.0
"""Seconds a health probe may take (at most the call timeout)."""

MODELS_TIMEOUT = 10.0
"""Seconds a model listing may take (at most the call timeout)."""


class HealthMonitor:
    """Probes the pool's providers, now or every `interval` seconds, and reports their state."""

    def __init__(
        self,
        slots: Mapping[str, ProviderSlot],
        tiers: Mapping[Tier, Sequence[ProviderSlot]],
        *,
        metrics: PoolMetrics,
        timeout: float,
        interval: float,
    ) -> None:
        self._slots = slots
        self._tiers = tiers
        self._metrics = metrics
        self._timeout = timeout
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start periodic checks (idempotent)."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._loop(), name="llm-pool-health")

    async def stop(self) -> None:
        """Stop periodic checks and wait until the loop has ended."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _loop(self) -> None:
        while True:
            await self.check()
            await asyncio.sleep(self.interval)

    async def check(self) -> None:
        """Probe all providers concurrently; a failed probe opens that provider's circuit."""
        await asyncio.gather(*(self._probe(s) for s in self._slots.values()))

    async def _probe(self, slot: ProviderSlot) -> None:
        try:
            async with asyncio.timeout(min(self._timeout, PROBE_TIMEOUT)):
                info = await slot.provider.health()
        except TimeoutError:
            info = HealthInfo(ok=False, detail="health check timed out")
        except Exception as exc:  # a probe must never kill the loop
            info = HealthInfo(ok=False, detail=f"{type(exc).__name__}: {exc}")
        slot.health = info
        self._metrics.healthy.labels(slot.name).set(1 if info.ok else 0)
        if not info.ok and slot.breaker.state is not CircuitState.OPEN:
            log.warning("provider %s unhealthy: %s", slot.name, info.detail)
            slot.breaker.trip()
        slot.update_circuit_metric()

    def snapshot(self) -> dict[str, Any]:
        """Last known state, without probing anything."""
        providers: dict[str, Any] = {}
        for name, slot in self._slots.items():
            info = slot.health
            state = slot.breaker.state
            slot.update_circuit_metric()
            providers[name] = {
                "ok": (info.ok if info else True) and state is not CircuitState.OPEN,
                "checked": info is not None,
                "detail": info.detail if info else "not checked yet",
                "model": slot.provider.model,
                "circuit": state.value,
                "in_flight": slot.active,
                "waiting": slot.waiting,
                "max_parallel": slot.provider.max_parallel,
            }
        tiers = {
            tier: {
                "providers": [s.name for s in chain],
                "ok": any(providers[s.name]["ok"] for s in chain),
            }
            for tier, chain in self._tiers.items()
        }
        return {"ok": all(t["ok"] for t in tiers.values()), "providers": providers, "tiers": tiers}

    async def models(self) -> dict[str, list[str]]:
        """Models each provider offers; a provider that cannot answer lists none."""

        async def one(slot: ProviderSlot) -> list[str]:
            try:
                async with asyncio.timeout(min(self._timeout, MODELS_TIMEOUT)):
                    return await slot.provider.models()
            except (ProviderError, TimeoutError) as exc:
                log.info("models of %s unavailable: %s", slot.name, exc)
                return []

        names = list(self._slots)
        found = await asyncio.gather(*(one(self._slots[n]) for n in names))
        return dict(zip(names, found, strict=True))
