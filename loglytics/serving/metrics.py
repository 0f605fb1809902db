"""The request stage's Prometheus metrics, on the worker's registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class RequestMetrics:
    """Per-task request counts by outcome, latency, and requests in flight."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "loglytics_requests_total",
            "On-demand requests by task and outcome (ok or the error kind)",
            ["task", "outcome"],
            registry=registry,
        )
        self.latency = Histogram(
            "loglytics_request_seconds",
            "Time from taking a request to sending its final reply",
            ["task"],
            registry=registry,
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 40, 80),
        )
        self.in_flight = Gauge(
            "loglytics_requests_in_flight", "Requests being served", registry=registry
        )
        self.dropped = Counter(
            "loglytics_requests_dropped_total",
            "Requests not answered: expired, or dead-lettered for lack of a request id",
            ["reason"],
            registry=registry,
        )
