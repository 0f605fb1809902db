"""A tenant's rows deleted from every ClickHouse table that holds tenant rows.

Lightweight deletes (`DELETE FROM ... WHERE tenant = ...`): the rows stop
being visible to every query, FINAL and the views included, at once, and are
dropped from disk by the next merges. The tables come from the registry, so a
table added later is covered without anyone remembering to list it here.
"""

from __future__ import annotations

from typing import Any, Protocol

from loglytics.storage.tables import TABLE_SPECS


class Commander(Protocol):
    def command(self, cmd: str, parameters: dict[str, Any] | None = None) -> Any: ...


def tenant_tables() -> tuple[str, ...]:
    """Every registry table with a tenant column."""
    return tuple(t.name for t in TABLE_SPECS if any(c.name == "tenant" for c in t.columns))


def delete_tenant_rows(client: Commander, tenant: str) -> tuple[str, ...]:
    """Delete the tenant's rows everywhere; returns the tables it ran on (all or raises)."""
    tables = tenant_tables()
    for table in tables:
        client.command(
            f"DELETE FROM `{table}` WHERE tenant = {{tenant:String}}", parameters={"tenant": tenant}
        )
    return tables
