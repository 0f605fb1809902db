"""The table registry, the schema chdb actually creates, and the query planner agree.

The registry (`loglytics.storage.tables`) is the one declaration of every table;
these tests check it against what the engine reports (``DESCRIBE TABLE`` and
``system.tables``) for a fresh database and for one created by the hand-written
DDL that shipped as migration 1 (kept verbatim below: production databases were
built by it, so the registry must keep describing exactly that schema).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from loglytics.storage import Client, migrate, open_client
from loglytics.storage.plan import SOURCES, Filter, QueryPlan
from loglytics.storage.registry import (
    Column,
    Readable,
    Source,
    Table,
    View,
    kind_of_type,
    migration_statements,
)
from loglytics.storage.schema import MIGRATIONS
from loglytics.storage.tables import FINDINGS, LEDGER, TABLE_SPECS, TENANTS, VIEW_SPECS

# -- migration 1 as it shipped (hand-written DDL, before the registry) --------------------

_TS = "DateTime64(3, 'UTC')"
_MT_SETTINGS = "SETTINGS non_replicated_deduplication_window = 10000"

V1_AS_SHIPPED = (
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

LEDGER_AS_SHIPPED = f"""CREATE TABLE IF NOT EXISTS schema_migrations (
    version UInt32,
    description String,
    applied_at {_TS} DEFAULT now64(3)
) ENGINE = ReplacingMergeTree(applied_at)
ORDER BY version"""


# -- helpers ------------------------------------------------------------------------------

Described = tuple[str, str, str, str, str, str]


@pytest.fixture(scope="module")
def engine_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("chdb-tables")
    keeper = open_client(f"chdb://{path}")  # one engine for the module (one per process)
    try:
        yield path
    finally:
        keeper.close()


@pytest.fixture
def fresh_db(engine_dir: Path) -> Iterator[Client]:
    """An empty database of its own (not migrated)."""
    client = open_client(f"chdb://{engine_dir}?database=r_{uuid.uuid4().hex[:12]}")
    try:
        yield client
    finally:
        client.close()


def describe(client: Client, name: str) -> list[Described]:
    """(name, type, default kind, default expression, comment, codec) per column, in order."""
    rows = client.query(f"DESCRIBE TABLE {name}").result_rows
    return [(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows]


def declared(source: Source) -> list[Described]:
    return [
        (c.name, c.type, "DEFAULT" if c.default else "", c.default or "", c.comment or "",
         c.codec or "")
        for c in source.columns
    ]  # fmt: skip


def table_meta(client: Client, name: str) -> tuple[str, str, str, str]:
    """(engine_full, sorting_key, partition_key, create_table_query without the database)."""
    rows = client.query(
        "SELECT engine_full, sorting_key, partition_key, create_table_query FROM system.tables"
        " WHERE database = currentDatabase() AND name = {name:String}",
        parameters={"name": name},
    ).result_rows
    assert len(rows) == 1, (name, rows)
    engine, sorting, partition, query = (str(v) for v in rows[0])
    database = client.query("SELECT currentDatabase()").result_rows[0][0]
    return engine, sorting, partition, query.replace(f"{database}.", "")


def assert_registry_matches(client: Client) -> None:
    """Every registered table and view exists exactly as declared; the planner agrees."""
    for table in (*TABLE_SPECS, LEDGER):
        assert describe(client, table.name) == declared(table), table.name
        engine, sorting, partition, _ = table_meta(client, table.name)
        assert engine.startswith(f"{table.engine} "), (table.name, engine)
        assert sorting == ", ".join(table.order_by), table.name
        assert partition == (table.partition_by or ""), table.name
        for key, value in table.settings:
            assert f"{key} = {value}" in engine, (table.name, key)
        # The sink inserts exactly the columns the server does not fill, in table order.
        server_filled = {r[0] for r in describe(client, table.name) if r[2]}
        assert table.insert_columns == tuple(
            r[0] for r in describe(client, table.name) if r[0] not in server_filled
        )
    for view in VIEW_SPECS:
        assert describe(client, view.name) == declared(view), view.name
    assert_planner_matches(client)


def assert_planner_matches(client: Client) -> None:
    sources: tuple[Source, ...] = (*TABLE_SPECS, *VIEW_SPECS)
    registered = {s.name: s for s in sources}
    assert set(SOURCES) == {name for name, s in registered.items() if s.planner is not None}
    for name, spec in SOURCES.items():
        actual = {r[0]: r[1] for r in describe(client, name)}
        readable = {c.name for c in registered[name].columns if c.readable}
        assert "tenant" in actual and "tenant" not in spec.columns, name
        assert set(spec.columns) == readable and readable <= set(actual), name
        for column, kind in spec.columns.items():
            assert kind == kind_of_type(actual[column]), (name, column, actual[column])
        assert spec.columns[spec.time_column] in ("time", "date"), name
        engine = client.query(
            "SELECT engine FROM system.tables WHERE database = currentDatabase()"
            " AND name = {name:String}",
            parameters={"name": name},
        ).result_rows[0][0]
        assert spec.final == (engine == "ReplacingMergeTree"), (name, engine)
    schema = QueryPlan.model_json_schema()
    assert schema["properties"]["source"]["enum"] == list(SOURCES)
    columns = Filter.model_json_schema()["properties"]["column"]["enum"]
    assert set(columns) == {c for spec in SOURCES.values() for c in spec.columns}


# -- the registry against chdb ------------------------------------------------------------


def test_a_fresh_database_is_what_the_registry_declares(fresh_db: Client) -> None:
    assert migrate(fresh_db) == [m.version for m in MIGRATIONS]
    assert_registry_matches(fresh_db)
    # Every version the registry mentions has a migration that derives its DDL.
    sources: tuple[Source, ...] = (*TABLE_SPECS, LEDGER, *VIEW_SPECS)
    versions = {s.since for s in sources} | {c.since for s in sources for c in s.columns}
    assert versions <= {m.version for m in MIGRATIONS}


def test_a_database_built_by_the_shipped_ddl_migrates_cleanly(
    fresh_db: Client, engine_dir: Path
) -> None:
    fresh_db.command(LEDGER_AS_SHIPPED)
    for statement in V1_AS_SHIPPED:
        fresh_db.command(statement)
    fresh_db.insert(
        "schema_migrations",
        [[1, "findings, windows, templates, usage, tenants and dashboard views"]],
        column_names=["version", "description"],
    )
    assert migrate(fresh_db) == [m.version for m in MIGRATIONS if m.version > 1]
    assert_registry_matches(fresh_db)
    # And the engine's own normalised CREATE of each object equals a registry-built one.
    derived = open_client(f"chdb://{engine_dir}?database=d_{uuid.uuid4().hex[:12]}")
    try:
        migrate(derived)
        for name in (*(t.name for t in TABLE_SPECS), LEDGER.name, *(v.name for v in VIEW_SPECS)):
            assert table_meta(fresh_db, name) == table_meta(derived, name), name
    finally:
        derived.close()


def test_later_versions_replay_the_same_history(fresh_db: Client) -> None:
    """A column or table added by migration 2 ends up as declared, created fresh or migrated."""
    toy = Table(
        "toy",
        (
            Column("tenant", "String", readable=False),
            Column("a", "UInt32"),
            Column("b", "String", since=2, comment="added later"),
            Column("c", "UInt8"),
            Column("at", "DateTime64(3, 'UTC')", default="now64(3)"),
        ),
        engine="ReplacingMergeTree(at)",
        order_by=("tenant",),
        planner=Readable("at"),
    )
    later = Table("toy_later", (Column("tenant", "String"),), "MergeTree", ("tenant",), since=2)
    view = View("v_toy", (Column("tenant", "String"), Column("b", "String")),
                "SELECT tenant, b FROM toy", since=2)  # fmt: skip
    first = migration_statements(1, (toy, later), (view,))
    assert len(first) == 1 and " b String" not in first[0]
    for statement in first:
        fresh_db.command(statement)
    assert [r[0] for r in describe(fresh_db, "toy")] == ["tenant", "a", "c", "at"]
    second = migration_statements(2, (toy, later), (view,))
    assert second[1] == (
        "ALTER TABLE toy ADD COLUMN IF NOT EXISTS b String COMMENT 'added later' AFTER a"
    )
    for _ in range(2):  # idempotent: a migration cut short is simply run again
        for statement in second:
            fresh_db.command(statement)
    assert describe(fresh_db, "toy") == declared(toy)
    assert describe(fresh_db, "toy_later") == declared(later)
    assert describe(fresh_db, "v_toy") == declared(view)
    assert toy.insert_columns == ("tenant", "a", "b", "c")


# -- the registry on its own --------------------------------------------------------------


def test_rows_are_built_by_column_name() -> None:
    row = TENANTS.row(updated_at=3, enabled=True, tier="pro", tenant="a")
    assert row == ("a", "pro", True, 3)  # in insert order, whatever order they were named in
    with pytest.raises(TypeError, match="updated_at"):
        TENANTS.row(tenant="a", tier="pro", enabled=True)
    with pytest.raises(TypeError, match="api_key_hashes"):
        TENANTS.row(tenant="a", tier="pro", enabled=True, updated_at=3, api_key_hashes=[])
    assert "ingested_at" not in FINDINGS.insert_columns


@pytest.mark.parametrize(
    "bad",
    [
        dict(columns=(Column("a", "String"), Column("a", "UInt8"))),
        dict(columns=(Column("tenant", "String"), Column("m", "Map(String, UInt8)")),
             planner=Readable("tenant")),
        dict(columns=(Column("tenant", "String"),), planner=Readable("tenant")),
        dict(columns=(Column("tenant", "String"), Column("at", "Date", readable=False)),
             planner=Readable("at")),
        dict(columns=(Column("tenant", "String"),), order_by=("nope",)),
        dict(columns=(Column("not a name", "String"),), order_by=()),
    ],
)  # fmt: skip
def test_registry_mistakes_fail_when_declared(bad: dict[str, Any]) -> None:
    fields: dict[str, Any] = {"engine": "MergeTree", "order_by": ("tenant",), **bad}
    with pytest.raises(ValueError):
        Table("t", **fields)


def test_planner_kinds_follow_clickhouse_types() -> None:
    assert kind_of_type("LowCardinality(String)") == "str"
    assert kind_of_type("Nullable(DateTime64(3, 'UTC'))") == "time"
    assert kind_of_type("DateTime('UTC')") == "time"
    assert kind_of_type("Date") == "date" and kind_of_type("Bool") == "bool"
    assert kind_of_type("UInt64") == "num" and kind_of_type("Float64") == "num"
    assert kind_of_type("Array(String)") is None and kind_of_type("Map(String, UInt64)") is None
