"""Per-tenant token accounting: the quota ledger lives in `runtime.quota_table`.

The pool reserves a call's maximum before calling and settles the real count
after; the ledger's state is a changelog-backed global table, so every worker
admits against the same counters and they survive restarts. Usage records
flow to the `usage` topic and, through `sinks.store_usage`, to ClickHouse.
This module exposes the ledger's view for operators.
"""

from __future__ import annotations

from typing import Any

from loglytics.agents.runtime import quota_table


def usage_by_tenant() -> dict[str, Any]:
    """Tokens this month and calls today, per tenant, as the ledger holds them."""
    return {k.decode(): v for k, v in quota_table.items() if isinstance(k, bytes)}
