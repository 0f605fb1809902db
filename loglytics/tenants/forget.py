"""What deleting a tenant removes inside the worker: its table state, then its rows.

Every table's keys start with the tenant: `tenant` (the quota book),
`tenant/source...` (ingest state, templates, baselines) or `tenant#...`
(verdicts, incidents). A tenant name holds neither `/` nor `#`, so that prefix
is the tenant's and no one else's; the tables are the app's own registry, so
a stage that adds a table later is covered without being listed here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, MutableMapping
from typing import Any

from loglytics.runtime import Runtime
from loglytics.storage.erase import delete_tenant_rows

log = logging.getLogger(__name__)


def owned_by(key: object, tenant: str) -> bool:
    """Whether a table key belongs to the tenant."""
    if isinstance(key, str):
        key = key.encode()
    if not isinstance(key, bytes):
        return False
    name = tenant.encode()
    return key == name or key.startswith((name + b"/", name + b"#"))


def drop_state(tables: Iterable[MutableMapping[Any, Any]], tenant: str) -> int:
    """Delete the tenant's keys from every table (a changelog tombstone each); the count."""
    dropped = 0
    for table in tables:
        for key in [k for k in list(table.keys()) if owned_by(k, tenant)]:
            del table[key]
            dropped += 1
    return dropped


async def forget_tenant(
    tables: Iterable[MutableMapping[Any, Any]], runtime: Runtime, tenant: str
) -> None:
    """Refuse the tenant at once (its record goes first), drop its state, delete its rows.

    The sink is flushed first, so rows it still buffered for the tenant are deleted too."""
    dropped = drop_state(tables, tenant)
    rt = await runtime.ready()
    if rt.sink is not None:
        await rt.sink.flush(timeout=60)
    deleted = await asyncio.to_thread(delete_tenant_rows, rt.client, tenant)
    log.info("tenant %s deleted: %d state keys, rows of %s", tenant, dropped, ", ".join(deleted))
