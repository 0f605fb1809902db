"""Keep the ClickHouse mirror in step with the `tenants` topic; carry out deletions.

Which tenants exist is every worker's own view of the whole topic
(`loglytics.tenant_view`); this agent, on the owner of a record's partition,
mirrors it to ClickHouse once, dead-letters malformed records, and deletes a
tenant's state and rows on its tombstone.
"""

from __future__ import annotations

import faust
from faust.types import StreamT

from loglytics.deadletters import DeadLetterFn, decoded
from loglytics.runtime import Runtime
from loglytics.schemas import TenantRecord
from loglytics.tenants.forget import forget_tenant

STAGE = "tenants"


def register(
    app: faust.App, topic: faust.TopicT, runtime: Runtime, dead_letter: DeadLetterFn
) -> None:
    """Declare the tenants agent on the app."""

    @app.agent(topic, name="loglytics.tenants")
    async def tenants_agent(stream: StreamT[bytes]) -> None:
        async for event in stream.events():
            value = event.message.value
            key = event.message.key
            if value is None and isinstance(key, bytes) and key:  # `loglytics tenants delete`
                await forget_tenant(app.tables.values(), runtime, key.decode(errors="replace"))
                continue
            record = await decoded(event, TenantRecord, STAGE, dead_letter)
            if record is None:
                continue
            if isinstance(key, bytes) and key != record.tenant.encode():
                await dead_letter(STAGE, "message key does not match the tenant id", event)
                continue
            rt = await runtime.ready()
            if rt.sink is not None:
                rt.sink.add_tenant(record)
