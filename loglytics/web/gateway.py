"""The worker's one `RequestClient`, shared by every HTTP call and started on first use.

Started lazily so a worker nobody calls over HTTP opens no extra Kafka
connections; stopped with the worker (it is a Faust-registered service).
"""

from __future__ import annotations

import asyncio

from mode import Service

from loglytics.clients import RequestClient
from loglytics.settings import Settings


class Gateway(Service):
    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.settings = settings
        self._client: RequestClient | None = None
        self._lock = asyncio.Lock()

    async def client(self) -> RequestClient:
        if self._client is None:
            async with self._lock:
                if self._client is None:
                    settings = self.settings
                    bootstrap = settings.kafka_bootstrap_servers or "127.0.0.1:9092"
                    client = RequestClient(bootstrap, partitions=settings.topic_partitions)
                    await client.start()
                    self._client = client
        return self._client

    async def on_stop(self) -> None:
        if self._client is not None:
            await self._client.stop()
            self._client = None
