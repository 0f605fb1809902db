"""One provider as the pool sees it: its concurrency slots, circuit breaker and last health.

Why a semaphore per provider, sized to its parallel slots: llama.cpp and
Ollama process `n` sequences at once and queue the rest on their side, where
we can neither see nor cancel them. Queueing here instead makes the queue
depth a metric, keeps the server's batch full but not overfull, and lets a
waiter notice that the circuit opened while it waited.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from loglytics.providers.base import HealthInfo, Provider
from loglytics.providers.breaker import CircuitBreaker
from loglytics.providers.metrics import PoolMetrics


class ProviderSlot:
    """A provider plus the pool's bookkeeping for it."""

    def __init__(self, provider: Provider, breaker: CircuitBreaker, metrics: PoolMetrics) -> None:
        self.provider = provider
        self.breaker = breaker
        self.semaphore = asyncio.Semaphore(max(1, provider.max_parallel))
        self.waiting = 0
        self.active = 0
        self.health: HealthInfo | None = None
        self._metrics = metrics
        self.update_circuit_metric()

    @property
    def name(self) -> str:
        return self.provider.name

    def update_circuit_metric(self) -> None:
        self._metrics.circuit.labels(self.name).set(self.breaker.state.gauge)

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[None]:
        """Hold one of the provider's parallel slots; waiters are counted as queue depth."""
        self.waiting += 1
        self._metrics.queue_depth.labels(self.name).set(self.waiting)
        try:
            await self.semaphore.acquire()
        finally:
            self.waiting -= 1
            self._metrics.queue_depth.labels(self.name).set(self.waiting)
        self.active += 1
        self._metrics.in_flight.labels(self.name).set(self.active)
        try:
            yield
        finally:
            self.active -= 1
            self._metrics.in_flight.labels(self.name).set(self.active)
            self.semaphore.release()
