"""Every ClickHouse table and view of loglytics, declared once (see `registry` for why).

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

Columns are listed in insert order. ``tenant`` is never readable by the query
planner: it adds the caller's tenant filter itself. View column types are what
the engine infers from the SELECT; the registry test checks them against chdb.
Adding something later: give it ``since=<new migration version>`` and add that
`Migration` in `schema`; its DDL is derived from here.
"""

from __future__ import annotations

from loglytics.storage.registry import Column, Readable, Source, Table, View

__all__ = [
    "DEDUP_WINDOW",
    "FINDINGS",
    "INCIDENTS",
    "INCIDENT_FEEDBACK",
    "LEDGER",
    "LLM_USAGE",
    "TABLE_SPECS",
    "TEMPLATES",
    "TENANTS",
    "VIEW_SPECS",
    "WINDOWS",
    "WINDOW_STATS",
    "planner_sources",
    "table_spec",
]

DEDUP_WINDOW = 10_000  # recent insert blocks remembered per table for token dedup
TS = "DateTime64(3, 'UTC')"
LC = "LowCardinality(String)"
_DEDUP = (("non_replicated_deduplication_window", DEDUP_WINDOW),)


def _tenant(type_: str = LC) -> Column:
    return Column("tenant", type_, readable=False)


def _ingested_at() -> Column:
    """The version column of a ReplacingMergeTree: the latest ingest of an identity wins."""
    return Column("ingested_at", TS, readable=False, default="now64(3)")


FINDINGS = Table(
    "findings",
    (
        _tenant(),
        Column("finding_id", "String"),
        Column("source", LC),
        Column("window_start", TS),
        Column("window_end", TS),
        Column("kind", LC),
        Column("category", LC),
        Column("severity", LC),
        Column("title", "String"),
        Column("summary", "String"),
        Column("evidence", "String", readable=False, codec="ZSTD(3)"),
        Column("recommendations", "Array(String)", readable=False),
        Column("confidence", "Float64"),
        Column("model_used", LC),
        Column("tokens_used", "UInt32"),
        Column("latency_ms", "Float64"),
        Column("created_at", TS),
        Column("schema_version", "UInt16", readable=False),
        # A muted pattern's finding (incident feedback, migration 3): stored, alerted nowhere.
        Column("muted", "Bool", since=3),
        _ingested_at(),
    ),
    engine="ReplacingMergeTree(ingested_at)",
    order_by=("tenant", "finding_id"),
    settings=_DEDUP,
    planner=Readable(
        "window_start",
        default_columns=(
            "finding_id",
            "source",
            "window_start",
            "severity",
            "category",
            "title",
            "summary",
            "confidence",
            "model_used",
        ),
    ),
)

# One row per (window, template); replays replace (latest ingest wins).
WINDOW_STATS = Table(
    "window_stats",
    (
        _tenant(),
        Column("source", LC),
        Column("window_start", TS),
        Column("window_end", TS),
        Column("template_id", "String"),
        Column("template", "String"),
        Column("count", "UInt64"),
        Column("level", LC),
        Column("is_new", "Bool"),
        Column(
            "line_count",
            "UInt64",
            comment="the whole window's lines (repeated per row; do not sum)",
        ),
        _ingested_at(),
    ),
    engine="ReplacingMergeTree(ingested_at)",
    order_by=("tenant", "source", "window_start", "template_id"),
    partition_by="toYYYYMM(window_start)",
    settings=_DEDUP,
    planner=Readable("window_start"),
)

# Per-window totals, so windows with many templates are counted once.
WINDOWS = Table(
    "windows",
    (
        _tenant(),
        Column("source", LC),
        Column("window_start", TS),
        Column("window_end", TS),
        Column("line_count", "UInt64"),
        Column("level_counts", f"Map({LC}, UInt64)", readable=False),
        Column("template_count", "UInt32"),
        Column("new_templates", "UInt32"),
        Column("flagged_lines", "UInt64"),
        Column("closed_by", LC),
        _ingested_at(),
    ),
    engine="ReplacingMergeTree(ingested_at)",
    order_by=("tenant", "source", "window_start"),
    partition_by="toYYYYMM(window_start)",
    settings=_DEDUP,
    planner=Readable("window_start"),
)

# Cumulative snapshots: the row with the latest last_seen wins.
TEMPLATES = Table(
    "templates",
    (
        _tenant(),
        Column("source", LC),
        Column("template_id", "String"),
        Column("template", "String"),
        Column("level", LC),
        Column("first_seen", TS),
        Column("last_seen", TS),
        Column("count", "UInt64"),
    ),
    engine="ReplacingMergeTree(last_seen)",
    order_by=("tenant", "source", "template_id"),
    settings=_DEDUP,
    planner=Readable("last_seen"),
)

# Identical usage records (a replayed Kafka message) collapse on the full key.
LLM_USAGE = Table(
    "llm_usage",
    (
        _tenant(),
        Column("ts", TS),
        Column("request_id", "String"),
        Column("tier", LC),
        Column("task", LC),
        Column("provider", LC),
        Column("model", LC),
        Column("prompt_tokens", "UInt32"),
        Column("completion_tokens", "UInt32"),
        Column("estimated", "Bool"),
        Column("cached", "Bool"),
        Column("latency_ms", "Float64"),
    ),
    engine="ReplacingMergeTree",
    order_by=("tenant", "ts", "request_id", "task", "provider", "model"),
    partition_by="toYYYYMM(ts)",
    settings=_DEDUP,
    planner=Readable("ts"),
)

# A mirror of the tenants topic without key hashes; not for the planner.
TENANTS = Table(
    "tenants",
    (
        _tenant("String"),
        Column("tier", LC, readable=False),
        Column("enabled", "Bool", readable=False),
        Column("updated_at", TS, readable=False),
    ),
    engine="ReplacingMergeTree(updated_at)",
    order_by=("tenant",),
    settings=_DEDUP,
)

# One row per incident event; the highest version of an incident is its current state.
INCIDENTS = Table(
    "incidents",
    (
        _tenant(),
        Column("incident_id", "String"),
        Column("version", "UInt32"),
        Column("event", LC),
        Column("status", LC),
        Column("sources", "Array(String)", readable=False),
        Column("severity", LC),
        Column("title", "String"),
        Column("summary", "String"),
        Column("opened_at", TS),
        Column("updated_at", TS),
        Column("resolved_at", f"Nullable({TS})"),
        Column("finding_ids", "Array(String)", readable=False),
        Column("template_ids", "Array(String)", readable=False),
        Column("signal_kinds", "Array(String)", readable=False),
        Column("findings_count", "UInt32"),
        Column("windows_count", "UInt32"),
        Column("first_window_start", TS),
        Column("last_window_end", TS),
        Column("previous_incident_id", "String"),
        Column("acknowledged", "Bool"),
        Column("resolved_by", LC),
        Column("schema_version", "UInt16", readable=False),
    ),
    engine="ReplacingMergeTree(version)",
    order_by=("tenant", "incident_id"),
    settings=_DEDUP,
    planner=Readable(
        "opened_at",
        default_columns=(
            "incident_id",
            "status",
            "severity",
            "title",
            "opened_at",
            "resolved_at",
            "findings_count",
        ),
    ),
    since=2,
)

# Incident feedback (migration 3), mirrored from the compacted `incident-feedback` topic:
# one row per record (ack, resolve, mute, unmute); a mute's latest row is its state.
INCIDENT_FEEDBACK = Table(
    "incident_feedback",
    (
        _tenant(),
        Column("feedback_id", "String"),
        Column("action", LC),
        Column("incident_id", "String"),
        Column("mute_id", "String"),
        Column("template_ids", "Array(String)", readable=False),
        Column("sources", "Array(String)", readable=False),
        Column("reason", LC),
        Column("until", f"Nullable({TS})"),
        Column("active", "Bool"),
        Column("by", "String"),
        Column("created_at", TS),
        _ingested_at(),
    ),
    engine="ReplacingMergeTree(ingested_at)",
    order_by=("tenant", "feedback_id"),
    settings=_DEDUP,
    planner=Readable(
        "created_at",
        default_columns=("action", "incident_id", "mute_id", "reason", "until", "created_at"),
    ),
    since=3,
)

# The migrations ledger (see `schema.migrate`); created before any migration runs.
LEDGER = Table(
    "schema_migrations",
    (
        Column("version", "UInt32", readable=False),
        Column("description", "String", readable=False),
        Column("applied_at", TS, readable=False, default="now64(3)"),
    ),
    engine="ReplacingMergeTree(applied_at)",
    order_by=("version",),
)

TABLE_SPECS: tuple[Table, ...] = (
    FINDINGS,
    WINDOW_STATS,
    WINDOWS,
    TEMPLATES,
    LLM_USAGE,
    TENANTS,
    INCIDENTS,
    INCIDENT_FEEDBACK,
)

_DT = "DateTime('UTC')"
_U64 = "UInt64"

# In creation order: v_tokens_daily reads v_usage_daily.
VIEW_SPECS: tuple[View, ...] = (
    View(
        "v_findings_hourly",
        (_tenant(), Column("hour", _DT), Column("severity", LC), Column("findings", _U64)),
        """SELECT tenant, toStartOfHour(window_start) AS hour, severity, count() AS findings
FROM findings FINAL
GROUP BY tenant, hour, severity""",
        planner=Readable("hour"),
    ),
    View(
        "v_top_templates",
        (
            _tenant(),
            Column("source", LC),
            Column("template_id", "String"),
            Column("template", "String"),
            Column("level", "String"),
            Column("total", _U64),
            Column("windows", _U64),
            Column("last_seen", TS),
        ),
        """SELECT tenant, source, template_id, any(template) AS template, any(level) AS level,
       sum(count) AS total, count() AS windows, max(window_end) AS last_seen
FROM window_stats FINAL
GROUP BY tenant, source, template_id""",
        planner=Readable("last_seen"),
    ),
    View(
        "v_new_templates",
        (
            _tenant(),
            Column("source", LC),
            Column("template_id", "String"),
            Column("template", "String"),
            Column("level", LC),
            Column("first_seen", TS),
            Column("last_seen", TS),
            Column("count", _U64),
        ),
        """SELECT tenant, source, template_id, template, level, first_seen, last_seen, count
FROM templates FINAL""",
        planner=Readable("first_seen"),
    ),
    View(
        "v_usage_daily",
        (
            _tenant(),
            Column("day", "Date"),
            Column("model", LC),
            Column("calls", _U64),
            Column("prompt_tokens", _U64),
            Column("completion_tokens", _U64),
            Column("total_tokens", _U64),
            Column("cached_calls", _U64),
            Column("estimated_calls", _U64),
        ),
        """SELECT tenant, toDate(ts) AS day, model,
       count() AS calls,
       sum(prompt_tokens) AS prompt_tokens,
       sum(completion_tokens) AS completion_tokens,
       sum(toUInt64(u.prompt_tokens) + u.completion_tokens) AS total_tokens,
       countIf(cached) AS cached_calls,
       countIf(estimated) AS estimated_calls
FROM llm_usage AS u FINAL
GROUP BY tenant, day, model""",
        planner=Readable("day"),
    ),
    View(
        "v_tokens_daily",
        (
            _tenant(),
            Column("day", "Date"),
            Column("calls", _U64),
            Column("prompt_tokens", _U64),
            Column("completion_tokens", _U64),
            Column("total_tokens", _U64),
        ),
        """SELECT tenant, day, sum(calls) AS calls, sum(prompt_tokens) AS prompt_tokens,
       sum(completion_tokens) AS completion_tokens, sum(total_tokens) AS total_tokens
FROM v_usage_daily
GROUP BY tenant, day""",
        planner=Readable("day"),
    ),
    # Incidents (migration 2): what is open now, and how fast incidents were detected
    # (opened after their first window started) and resolved.
    View(
        "v_open_incidents",
        (
            _tenant(),
            Column("severity", LC),
            Column("incidents", _U64),
            Column("oldest_opened_at", TS),
        ),
        """SELECT tenant, severity, count() AS incidents, min(opened_at) AS oldest_opened_at
FROM incidents FINAL
WHERE status = 'open'
GROUP BY tenant, severity""",
        planner=Readable("oldest_opened_at"),
        since=2,
    ),
    View(
        "v_incident_times",
        (
            _tenant(),
            Column("incident_id", "String"),
            Column("severity", LC),
            Column("status", LC),
            Column("opened_at", TS),
            Column("resolved_at", f"Nullable({TS})"),
            Column("detect_s", "Float64"),
            Column("resolve_s", "Nullable(Float64)"),
        ),
        """SELECT tenant, incident_id, severity, status, opened_at, resolved_at,
       dateDiff('millisecond', first_window_start, opened_at) / 1000 AS detect_s,
       dateDiff('millisecond', opened_at, resolved_at) / 1000 AS resolve_s
FROM incidents FINAL""",
        planner=Readable("opened_at"),
        since=2,
    ),
)


def table_spec(name: str) -> Table:
    """The registered table called ``name`` (KeyError names the known ones)."""
    for table in (*TABLE_SPECS, LEDGER):
        if table.name == name:
            return table
    raise KeyError(f"no table {name!r}; known: {[t.name for t in TABLE_SPECS]}")


def planner_sources() -> tuple[Source, ...]:
    """The tables and views the query planner may read, in registry order."""
    sources: tuple[Source, ...] = (*TABLE_SPECS, *VIEW_SPECS)
    return tuple(s for s in sources if s.planner is not None)
