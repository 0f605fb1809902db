"""GET /metrics: Prometheus text format for the runtime's registry and the default one.

The pool and the request agent register on `runtime.registry` (one per
worker, so tests can build pools without clashing names); process metrics
live on the default registry. Both are served on the same page.
"""

from __future__ import annotations

from typing import Any

import faust
from aiohttp import web
from faust.web import View
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST


def register(app: faust.App, registry: CollectorRegistry) -> None:
    """Serve the worker's registry and the process-wide one at `/metrics`."""

    class MetricsView(View):
        async def get(self, request: web.Request, **kwargs: Any) -> web.Response:
            body = generate_latest(registry) + generate_latest(REGISTRY)
            return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app.page("/metrics", name="metrics")(MetricsView)
