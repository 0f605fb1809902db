"""The pool's Prometheus metrics, on a registry the pool owns (or is given).

Why not the global default registry: tests build many pools in one process,
and the worker decides itself which registry its `/metrics` endpoint serves.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


class PoolMetrics:
    """All series the pool updates; label sets are small and bounded (no tenant labels)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.calls = Counter(
            "loglytics_llm_calls",
            "Pool calls by outcome (ok, cached, quota_exceeded, no_provider, invalid_output, ...)",
            ["tier", "task", "provider", "outcome"],
            registry=r,
        )
        self.errors = Counter(
            "loglytics_llm_errors",
            "Failures by kind: upstream attempt failures and typed pool errors",
            ["provider", "kind"],
            registry=r,
        )
        self.latency = Histogram(
            "loglytics_llm_latency_seconds",
            "Upstream call latency of served calls",
            ["tier", "provider"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.tokens = Counter(
            "loglytics_llm_tokens",
            "Tokens charged, by direction (in = prompt, out = completion)",
            ["tier", "provider", "direction"],
            registry=r,
        )
        self.cache_hits = Counter(
            "loglytics_llm_cache_hits",
            "Replies served from the response cache",
            ["tier", "task"],
            registry=r,
        )
        self.repairs = Counter(
            "loglytics_llm_repairs",
            "Repair attempts after invalid structured output",
            ["provider", "outcome"],
            registry=r,
        )
        self.circuit = Gauge(
            "loglytics_llm_circuit_state",
            "Circuit breaker: 0 closed, 1 half-open, 2 open",
            ["provider"],
            registry=r,
        )
        self.queue_depth = Gauge(
            "loglytics_llm_queue_depth",
            "Calls waiting for a provider slot",
            ["provider"],
            registry=r,
        )
        self.in_flight = Gauge(
            "loglytics_llm_in_flight", "Calls holding a provider slot", ["provider"], registry=r
        )
        self.healthy = Gauge(
            "loglytics_llm_provider_healthy",
            "Last health check: 1 ok, 0 failed",
            ["provider"],
            registry=r,
        )
