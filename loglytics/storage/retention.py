"""How long each ClickHouse table keeps its rows: TTLs from settings, set at every start.

Why not a numbered migration: a migration runs once, but retention is a setting;
when `RETENTION_DAYS` (or an override) changes, the next start must change the
TTL of a table that already holds data. So `apply_retention` runs after the
migrations at every start, reads each table's current TTL from
``system.tables`` and issues ``ALTER TABLE ... MODIFY TTL`` (or ``REMOVE TTL``
for 0, keep forever) only where it differs: an unchanged setting costs nothing,
a changed one costs one mutation (the server re-evaluates the TTL of the parts
it already has; rows past it go then or at the next merge).

Each table ages out by its time column, the one the query planner bounds
(`Readable.time_column` in the registry), so nothing here repeats a column name.
Rows already past their TTL when inserted (a backfill of old logs) are dropped
by the server at insert. Tables without a time column (tenants, the ledger)
keep their rows, and so does `incident_feedback`: a mute set long ago may still
hold, and the mirror is small.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from loglytics.settings import Settings
from loglytics.storage.registry import Table
from loglytics.storage.tables import (
    FINDINGS,
    INCIDENTS,
    LLM_USAGE,
    TEMPLATES,
    WINDOW_STATS,
    WINDOWS,
)

__all__ = [
    "RETAINED_TABLES",
    "RetentionPolicy",
    "apply_retention",
    "current_ttl_days",
    "ttl_clause",
]

log = logging.getLogger(__name__)

# Unset, usage (billing data) is kept at least this long, and never shorter than the rest.
USAGE_MIN_DAYS = 400

RETAINED_TABLES: tuple[Table, ...] = (
    FINDINGS,
    WINDOW_STATS,
    WINDOWS,
    TEMPLATES,
    INCIDENTS,
    LLM_USAGE,
)

_TTL = re.compile(r"\bTTL\s+(?P<expr>.+?)(?:\s+SETTINGS\s|$)", re.S)
_DAYS = re.compile(r"toIntervalDay\((\d+)\)|INTERVAL\s+(\d+)\s+DAY", re.I)


class Commander(Protocol):
    """The two calls made here (a clickhouse-connect `Client` satisfies it)."""

    def command(self, cmd: str) -> object: ...

    def query(self, query: str, parameters: dict[str, str] | None = None) -> object: ...


@dataclass(frozen=True)
class RetentionPolicy:
    """Days each retained table keeps rows (0: forever), by table name."""

    days: Mapping[str, int]

    @classmethod
    def from_settings(cls, settings: Settings) -> RetentionPolicy:
        """`RETENTION_DAYS` for every table, with the overrides for window stats, findings,
        incidents and usage; usage unset is kept the longest (`Settings.retention_usage_days`)."""
        base = settings.retention_days
        window_stats = _or(settings.retention_window_stats_days, base)
        findings = _or(settings.retention_findings_days, base)
        incidents = _or(settings.retention_incidents_days, base)
        others = (base, window_stats, findings, incidents)
        usage = settings.retention_usage_days
        if usage is None:
            usage = 0 if 0 in others else max(USAGE_MIN_DAYS, *others)
        return cls(
            {
                FINDINGS.name: findings,
                WINDOW_STATS.name: window_stats,
                WINDOWS.name: base,
                TEMPLATES.name: base,
                INCIDENTS.name: incidents,
                LLM_USAGE.name: usage,
            }
        )


def _or(value: int | None, default: int) -> int:
    return default if value is None else value


def _time_column(table: Table) -> str:
    if table.planner is None:
        raise ValueError(f"{table.name} has no time column to age rows out by")
    return table.planner.time_column


def ttl_clause(table: Table, days: int) -> str:
    """The TTL expression for ``table`` at ``days`` (a whole number of days, > 0)."""
    return f"toDateTime({_time_column(table)}) + INTERVAL {days} DAY"


def current_ttl_days(client: Commander, table: Table) -> int | None:
    """The days of the table's TTL as the server has it; None without a TTL.

    A TTL this module did not write (another column, not whole days) reads as -1,
    so `apply_retention` replaces it.
    """
    result = client.query(
        "SELECT engine_full FROM system.tables WHERE database = currentDatabase() "
        "AND name = {name:String}",
        parameters={"name": table.name},
    )
    rows = getattr(result, "result_rows", [])
    if not rows:
        raise LookupError(f"table {table.name} does not exist (run the migrations first)")
    found = _TTL.search(str(rows[0][0]))
    if found is None:
        return None
    expr = found.group("expr")
    days = _DAYS.search(expr)
    if days is None or f"toDateTime({_time_column(table)})" not in expr:
        return -1
    return int(days.group(1) or days.group(2))


def apply_retention(client: Commander, policy: RetentionPolicy) -> dict[str, int]:
    """Bring every retained table's TTL to the policy; return the tables changed, with days.

    Idempotent: a table whose TTL already matches is not touched.
    """
    changed: dict[str, int] = {}
    for table in RETAINED_TABLES:
        wanted = policy.days[table.name]
        current = current_ttl_days(client, table)
        if current == (wanted or None):
            continue
        if wanted == 0:
            client.command(f"ALTER TABLE {table.name} REMOVE TTL")
        else:
            client.command(f"ALTER TABLE {table.name} MODIFY TTL {ttl_clause(table, wanted)}")
        changed[table.name] = wanted
        kept = f"{wanted} days" if wanted else "forever"
        log.info("retention: %s keeps rows %s", table.name, kept)
    return changed
