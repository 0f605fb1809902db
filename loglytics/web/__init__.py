"""The worker's HTTP surface: the LLM API gateway and `/metrics`."""

import faust

from loglytics.runtime import Runtime
from loglytics.web import api, metrics
from loglytics.web.gateway import Gateway


def register(app: faust.App, runtime: Runtime) -> None:
    """Declare the API routes (with their gateway client, a worker service) and `/metrics`."""
    gateway = Gateway(runtime.settings)
    app.service(gateway)  # type: ignore[arg-type]
    api.register(app, gateway)
    metrics.register(app, runtime.registry)


__all__ = ["register"]
