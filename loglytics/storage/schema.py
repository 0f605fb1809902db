"""Numbered migrations, derived from the table registry and applied idempotently at start.

Why numbered migrations rather than one CREATE script: production tables live for
years; a later change (a column, a view) must be applied once, in order, to a
database that already holds data. Every statement is itself idempotent
(``IF NOT EXISTS`` / ``CREATE OR REPLACE VIEW``), so a crash halfway through a
migration is repaired by running it again; the version is recorded only after
all its statements succeeded.

The statements come from `loglytics.storage.tables` (see its docstring for the
dedup design): a migration's DDL is whatever the registry declares with that
``since`` version, so the tables are never written out twice.
"""

from __future__ import annotations

from dataclasses import dataclass

from clickhouse_connect.driver.client import Client

from loglytics.storage.registry import migration_statements
from loglytics.storage.tables import (
    DEDUP_WINDOW,
    FINDINGS,
    LEDGER,
    LLM_USAGE,
    TABLE_SPECS,
    TEMPLATES,
    TENANTS,
    VIEW_SPECS,
    WINDOW_STATS,
    WINDOWS,
)

__all__ = [
    "DEDUP_WINDOW",
    "FINDINGS_COLUMNS",
    "MIGRATIONS",
    "TABLES",
    "TEMPLATES_COLUMNS",
    "TENANTS_COLUMNS",
    "USAGE_COLUMNS",
    "VIEWS",
    "WINDOWS_COLUMNS",
    "WINDOW_STATS_COLUMNS",
    "Migration",
    "applied_versions",
    "migrate",
]

# Insert column orders, kept under their old names for readers of this module.
FINDINGS_COLUMNS: tuple[str, ...] = FINDINGS.insert_columns
WINDOW_STATS_COLUMNS: tuple[str, ...] = WINDOW_STATS.insert_columns
WINDOWS_COLUMNS: tuple[str, ...] = WINDOWS.insert_columns
TEMPLATES_COLUMNS: tuple[str, ...] = TEMPLATES.insert_columns
USAGE_COLUMNS: tuple[str, ...] = LLM_USAGE.insert_columns
TENANTS_COLUMNS: tuple[str, ...] = TENANTS.insert_columns

TABLES: tuple[str, ...] = tuple(t.name for t in TABLE_SPECS)
VIEWS: tuple[str, ...] = tuple(v.name for v in VIEW_SPECS)


@dataclass(frozen=True)
class Migration:
    """A numbered, ordered list of idempotent DDL statements."""

    version: int
    description: str
    statements: tuple[str, ...]


def _derived(version: int, description: str) -> Migration:
    return Migration(version, description, migration_statements(version, TABLE_SPECS, VIEW_SPECS))


MIGRATIONS: tuple[Migration, ...] = (
    _derived(1, "findings, windows, templates, usage, tenants and dashboard views"),
    _derived(2, "incidents"),
    _derived(3, "incident feedback, muted findings"),
)


def applied_versions(client: Client) -> set[int]:
    """Versions recorded in ``schema_migrations`` (the ledger is created if missing)."""
    client.command(LEDGER.create_statement())
    rows = client.query(f"SELECT DISTINCT version FROM {LEDGER.name}").result_rows
    return {int(r[0]) for r in rows}


def migrate(client: Client, migrations: tuple[Migration, ...] = MIGRATIONS) -> list[int]:
    """Apply the migrations not yet recorded, in version order; return those applied.

    Running it again is a no-op. Two processes racing here are harmless: every
    statement is idempotent and the ledger deduplicates versions on merge.
    """
    done = applied_versions(client)
    applied: list[int] = []
    for migration in sorted(migrations, key=lambda m: m.version):
        if migration.version in done:
            continue
        for statement in migration.statements:
            client.command(statement)
        client.insert(
            LEDGER.name,
            [LEDGER.row(version=migration.version, description=migration.description)],
            column_names=list(LEDGER.insert_columns),
        )
        applied.append(migration.version)
    return applied
