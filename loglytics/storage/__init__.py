"""ClickHouse storage: connection, table registry, migrations, batched sink, reads, plans.

Every table and view is declared once, in `tables` (shapes in `registry`); DDL,
insert order, row builders and the query planner's allow-list derive from it.

The same code serves the embedded chdb engine and a ClickHouse server; see
`client.open_client` for how DSNs map to each.
"""

from loglytics.storage.client import Client, DsnError, open_client, redact_dsn
from loglytics.storage.queries import (
    count_findings,
    findings_for,
    get_finding,
    tokens_by_tenant,
    usage_summary,
)
from loglytics.storage.schema import MIGRATIONS, TABLES, VIEWS, Migration, migrate
from loglytics.storage.sink import ClickHouseSink, SinkError, SinkFullError, TemplateRow

__all__ = [
    "MIGRATIONS",
    "TABLES",
    "VIEWS",
    "ClickHouseSink",
    "Client",
    "DsnError",
    "Migration",
    "SinkError",
    "SinkFullError",
    "TemplateRow",
    "count_findings",
    "findings_for",
    "get_finding",
    "migrate",
    "open_client",
    "redact_dsn",
    "tokens_by_tenant",
    "usage_summary",
]
