"""What the routes need from the rest of the product: the tenant of a key, and replies.

`KafkaBackend` is the real one: the tenant directory (from the `tenants`
topic) and one `RequestClient` on `llm.requests`/`llm.responses`, both started
with the app and stopped with it. Tests may hand the app another `Backend`.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Protocol

from loglytics.clients import Reply, RequestClient
from loglytics.gateway.directory import TenantDirectory
from loglytics.kafka_clients import KafkaConnection
from loglytics.schemas import LLMRequest, TenantRecord


class Backend(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def tenant_for(self, api_key: str) -> TenantRecord | None: ...

    def stream(self, request: LLMRequest, timeout: float) -> AsyncGenerator[Reply, None]: ...


class KafkaBackend:
    def __init__(self, kafka: KafkaConnection, *, partitions: int = 4) -> None:
        self.directory = TenantDirectory(kafka, partitions=partitions)
        self.client = RequestClient(kafka, partitions=partitions)

    async def start(self) -> None:
        await self.directory.start()
        try:
            await self.client.start()
        except BaseException:
            await self.directory.stop()
            raise

    async def stop(self) -> None:
        await self.client.stop()
        await self.directory.stop()

    def tenant_for(self, api_key: str) -> TenantRecord | None:
        return self.directory.lookup(api_key)

    def stream(self, request: LLMRequest, timeout: float) -> AsyncGenerator[Reply, None]:
        return self.client.stream(request, timeout)
