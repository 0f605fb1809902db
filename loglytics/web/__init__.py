"""The worker's HTTP surface: `/metrics` only (the HTTP API is `loglytics api`, gateway/)."""

import faust

from loglytics.runtime import Runtime
from loglytics.web import metrics


def register(app: faust.App, runtime: Runtime) -> None:
    """Serve the runtime's Prometheus registry at `/metrics`."""
    metrics.register(app, runtime.registry)


__all__ = ["register"]
