"""Tables, views and the migrations that create them, applied idempotently at start.

Why numbered migrations rather than one CREATE script: production tables live for
years; a later change (a column, a view) must be applied once, in order, to a
database that already holds data. Every statement is itself idempotent
(``IF NOT EXISTS`` / ``CREATE OR REPLACE VIEW``), so a crash halfway through a
migration is repaired by running it again; the version is recorded only after
all its statements succeeded.

Dedup design (replays from Kafka and insert retries must not double count):

* Fact tables are ReplacingMergeTree keyed by their natural identity, so a
  replayed row replaces its twin at merge time; readers use ``FINAL`` (the views
  do it for dashboards) so counts are right before merges happen.
* ``non_replicated_deduplication_window`` lets the sink pass an
  ``insert_deduplication_token`` per batch: a retried batch that had in fact been
  written is dropped by the server.
* Usage tokens are summed by a plain view over ``llm_usage FINAL`` rather than a
  SummingMergeTree materialized view: an MV sums every insert it sees, replays
  included, and would disagree with the deduplicated base table.
"""

from __future__ import annotations

from dataclasses import dataclass

from clickhouse_connect.driver.client import Client

__all__ = [
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

DEDUP_WINDOW = 10_000  # recent insert blocks remembered per table for token dedup
_TS = "DateTime64(3, 'UTC')"
_MT_SETTINGS = f"SETTINGS non_replicated_deduplication_window = {DEDUP_WINDOW}"

# Insert column orders, shared by the DDL below and the sink's row builders.
FINDINGS_COLUMNS: tuple[str, ...] = (
    "tenant", "finding_id", "source", "window_start", "window_end", "kind", "category",
    "severity", "title", "summary", "evidence", "recommendations", "confidence",
    "model_used", "tokens_used", "latency_ms", "created_at", "schema_version",
)  # fmt: skip
WINDOW_STATS_COLUMNS: tuple[str, ...] = (
    "tenant", "source", "window_start", "window_end", "template_id", "template", "count",
    "level", "is_new", "line_count",
)  # fmt: skip
WINDOWS_COLUMNS: tuple[str, ...] = (
    "tenant", "source", "window_start", "window_end", "line_count", "level_counts",
    "template_count", "new_templates", "flagged_lines", "closed_by",
)  # fmt: skip
TEMPLATES_COLUMNS: tuple[str, ...] = (
    "tenant", "source", "template_id", "template", "level", "first_seen", "last_seen", "count",
)  # fmt: skip
USAGE_COLUMNS: tuple[str, ...] = (
    "tenant", "ts", "request_id", "tier", "task", "provider", "model", "prompt_tokens",
    "completion_tokens", "estimated", "cached", "latency_ms",
)  # fmt: skip
TENANTS_COLUMNS: tuple[str, ...] = ("tenant", "tier", "enabled", "updated_at")

TABLES: tuple[str, ...] = (
    "findings", "window_stats", "windows", "templates", "llm_usage", "tenants",
)  # fmt: skip
VIEWS: tuple[str, ...] = (
    "v_findings_hourly", "v_top_templates", "v_new_templates", "v_usage_daily", "v_tokens_daily",
)  # fmt: skip


@dataclass(frozen=True)
class Migration:
    """A numbered, ordered list of idempotent DDL statements."""

    version: int
    description: str
    statements: tuple[str, ...]


_V1 = (
    f"""CREATE TABLE IF NOT EXISTS findings (
        tenant LowCardinality(String),
        finding_id String,
        source LowCardinality(String),
        window_start {_TS},
        window_end {_TS},
        kind LowCardinality(String),
        category LowCardinality(String),
        severity LowCardinality(String),
        title String,
        summary String,
        evidence String CODEC(ZSTD(3)),
        recommendations Array(String),
        confidence Float64,
        model_used LowCardinality(String),
        tokens_used UInt32,
        latency_ms Float64,
        created_at {_TS},
        schema_version UInt16,
        ingested_at {_TS} DEFAULT now64(3)
    ) ENGINE = ReplacingMergeTree(ingested_at)
    ORDER BY (tenant, finding_id)
    {_MT_SETTINGS}""",
    # One row per (window, template); replays replace (latest ingest wins).
    f"""CREATE TABLE IF NOT EXISTS window_stats (
        tenant LowCardinality(String),
        source LowCardinality(String),
        window_start {_TS},
        window_end {_TS},
        template_id String,
        template String,
        count UInt64,
        level LowCardinality(String),
        is_new Bool,
        line_count UInt64 COMMENT 'the whole window''s lines (repeated per row; do not sum)',
        ingested_at {_TS} DEFAULT now64(3)
    ) ENGINE = ReplacingMergeTree(ingested_at)
    PARTITION BY toYYYYMM(window_start)
    ORDER BY (tenant, source, window_start, template_id)
    {_MT_SETTINGS}""",
    # Per-window totals, so windows with many templates are counted once.
    f"""CREATE TABLE IF NOT EXISTS windows (
        tenant LowCardinality(String),
        source LowCardinality(String),
        window_start {_TS},
        window_end {_TS},
        line_count UInt64,
        level_counts Map(LowCardinality(String), UInt64),
        template_count UInt32,
        new_templates UInt32,
        flagged_lines UInt64,
        closed_by LowCardinality(String),
        ingested_at {_TS} DEFAULT now64(3)
    ) ENGINE = ReplacingMergeTree(ingested_at)
    PARTITION BY toYYYYMM(window_start)
    ORDER BY (tenant, source, window_start)
    {_MT_SETTINGS}""",
    # Cumulative snapshots: the row with the latest last_seen wins.
    f"""CREATE TABLE IF NOT EXISTS templates (
        tenant LowCardinality(String),
        source LowCardinality(String),
        template_id String,
        template String,
        level LowCardinality(String),
        first_seen {_TS},
        last_seen {_TS},
        count UInt64
    ) ENGINE = ReplacingMergeTree(last_seen)
    ORDER BY (tenant, source, template_id)
    {_MT_SETTINGS}""",
    # Identical usage records (a replayed Kafka message) collapse on the full key.
    f"""CREATE TABLE IF NOT EXISTS llm_usage (
        tenant LowCardinality(String),
        ts {_TS},
        request_id String,
        tier LowCardinality(String),
        task LowCardinality(String),
        provider LowCardinality(String),
        model LowCardinality(String),
        prompt_tokens UInt32,
        completion_tokens UInt32,
        estimated Bool,
        cached Bool,
        latency_ms Float64
    ) ENGINE = ReplacingMergeTree
    PARTITION BY toYYYYMM(ts)
    ORDER BY (tenant, ts, request_id, task, provider, model)
    {_MT_SETTINGS}""",
    f"""CREATE TABLE IF NOT EXISTS tenants (
        tenant String,
        tier LowCardinality(String),
        enabled Bool,
        updated_at {_TS}
    ) ENGINE = ReplacingMergeTree(updated_at)
    ORDER BY tenant
    {_MT_SETTINGS}""",
    """CREATE OR REPLACE VIEW v_findings_hourly AS
    SELECT tenant, toStartOfHour(window_start) AS hour, severity, count() AS findings
    FROM findings FINAL
    GROUP BY tenant, hour, severity""",
    """CREATE OR REPLACE VIEW v_top_templates AS
    SELECT tenant, source, template_id, any(template) AS template, any(level) AS level,
           sum(count) AS total, count() AS windows, max(window_end) AS last_seen
    FROM window_stats FINAL
    GROUP BY tenant, source, template_id""",
    """CREATE OR REPLACE VIEW v_new_templates AS
    SELECT tenant, source, template_id, template, level, first_seen, last_seen, count
    FROM templates FINAL""",
    """CREATE OR REPLACE VIEW v_usage_daily AS
    SELECT tenant, toDate(ts) AS day, model,
           count() AS calls,
           sum(prompt_tokens) AS prompt_tokens,
           sum(completion_tokens) AS completion_tokens,
           sum(toUInt64(u.prompt_tokens) + u.completion_tokens) AS total_tokens,
           countIf(cached) AS cached_calls,
           countIf(estimated) AS estimated_calls
    FROM llm_usage AS u FINAL
    GROUP BY tenant, day, model""",
    """CREATE OR REPLACE VIEW v_tokens_daily AS
    SELECT tenant, day, sum(calls) AS calls, sum(prompt_tokens) AS prompt_tokens,
           sum(completion_tokens) AS completion_tokens, sum(total_tokens) AS total_tokens
    FROM v_usage_daily
    GROUP BY tenant, day""",
)

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "findings, windows, templates, usage, tenants and dashboard views", _V1),
)

_LEDGER = f"""CREATE TABLE IF NOT EXISTS schema_migrations (
    version UInt32,
    description String,
    applied_at {_TS} DEFAULT now64(3)
) ENGINE = ReplacingMergeTree(applied_at)
ORDER BY version"""


def applied_versions(client: Client) -> set[int]:
    """Versions recorded in ``schema_migrations`` (the ledger is created if missing)."""
    client.command(_LEDGER)
    rows = client.query("SELECT DISTINCT version FROM schema_migrations").result_rows
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
            "schema_migrations",
            [[migration.version, migration.description]],
            column_names=["version", "description"],
        )
        applied.append(migration.version)
    return applied
