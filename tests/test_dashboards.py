"""The provisioned Grafana dashboards: static checks, and every panel's SQL on real data.

Why run the SQL: a dashboard is code that no type checker reads; a renamed column
or a macro the plugin does not have only shows as an empty panel in production.
Here every ClickHouse panel's SQL, expanded the way Grafana and the plugin expand
it (`grafana_sql`), runs on what a real worker wrote after a short pipeline run
(logs in, windows, templates, findings judged by the embedded model, usage
records) and must return rows with the columns the panel reads.
`test_dashboards_values.py` checks the figures on rows whose answer is known.

chdb allows one data directory per process: the worker (a subprocess) writes its
directory, stops, and only then does this process open it.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from dashboard_panels import (
    CLICKHOUSE,
    DASHBOARDS,
    ECONOMY,
    PANEL_COLUMNS,
    PROVISIONING,
    ROOT,
    Panel,
    by_tenant,
    check_shape,
    clickhouse_dashboards,
    clickhouse_panels,
    constants,
    context,
    load_dashboards,
    panel_titled,
    run_panel,
    tenant_values,
    variable,
)
from grafana_sql import MacroError, QueryContext, render
from kafka_io import produce, wait_for
from test_requests_support import WORKER_ENV, add_tenant
from worker_proc import WorkerProcess

from loglytics.embedded.stack import StackState
from loglytics.kafka_admin import consumer_lag
from loglytics.kafka_clients import KafkaConnection
from loglytics.schemas import LogBatch
from loglytics.settings import Settings, load_settings
from loglytics.storage import Client, open_client
from loglytics.storage.retention import (
    RETAINED_TABLES,
    RetentionPolicy,
    current_ttl_days,
)

QUOTA_FIELDS = (
    "free_tokens_per_month",
    "pro_tokens_per_month",
    "free_calls_per_day",
    "pro_calls_per_day",
)


# -- static checks ----------------------------------------------------------------------


def test_provider_loads_the_dashboards_from_the_mounted_folder() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.kafka.yml").read_text())
    mounts = [str(v) for v in compose["services"]["grafana"]["volumes"]]
    mount = next(m for m in mounts if m.startswith("./deploy/grafana/provisioning:"))
    container_root = mount.split(":")[1]
    providers = yaml.safe_load((DASHBOARDS / "dashboards.yml").read_text())["providers"]
    paths = {p["options"]["path"] for p in providers if p["type"] == "file"}
    assert paths == {f"{container_root}/dashboards"}
    assert set(clickhouse_dashboards()) == set(PANEL_COLUMNS)


def test_panels_use_the_provisioned_datasource_and_the_tenant_variable() -> None:
    sources = yaml.safe_load((PROVISIONING / "datasources" / "datasources.yml").read_text())
    uids = {ds["uid"] for ds in sources["datasources"] if ds["type"] == CLICKHOUSE}
    for uid, doc in clickhouse_dashboards().items():
        tenant = variable(doc, "tenant")
        assert tenant["multi"] and tenant["includeAll"], uid
        assert tenant["datasource"]["uid"] in uids
        for panel in doc["panels"]:
            for target in panel["targets"]:
                assert target["datasource"] == {"type": CLICKHOUSE, "uid": next(iter(uids))}
                assert target["editorType"] == "sql"
                assert int(target["pluginVersion"].split(".")[0]) >= 4  # no v3 migration
                assert target["format"] == (0 if panel["type"] == "timeseries" else 1)
                assert target["queryType"] == ("timeseries" if target["format"] == 0 else "table")
                assert "tenant IN (${tenant})" in target["rawSql"], panel["title"]


def test_every_clickhouse_panel_has_a_column_contract() -> None:
    found = {(p.dashboard, p.title) for p in clickhouse_panels()}
    declared = {(uid, title) for uid, panels in PANEL_COLUMNS.items() for title in panels}
    assert found == declared


def test_quota_constants_match_the_worker_settings() -> None:
    """The economy dashboard's quotas are the worker's (its defaults, or the compose env)."""
    compose = yaml.safe_load((ROOT / "docker-compose.kafka.yml").read_text())
    env = {str(k): str(v) for k, v in (compose["services"]["worker"]["environment"]).items()}
    defaults = Settings.model_fields
    quotas = constants(load_dashboards()[ECONOMY])
    assert set(quotas) == set(QUOTA_FIELDS)
    for name in QUOTA_FIELDS:
        assert quotas[name] == env.get(name.upper(), str(defaults[name].default)), name


def test_macros_expand_as_the_plugin_does() -> None:
    start = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
    ctx = QueryContext(start, start + timedelta(hours=1), 30.0, {"tenant": ["a", "b"], "n": "7"})
    sql = "SELECT $__timeInterval(ts) WHERE $__timeFilter(ts) AND t IN (${tenant}) LIMIT $n"
    assert render(sql, ctx) == (
        "SELECT toStartOfInterval(toDateTime(ts), INTERVAL 30 second) "
        "WHERE ts >= toDateTime(1714557600) AND ts <= toDateTime(1714561200) "
        "AND t IN ('a','b') LIMIT 7"
    )
    assert render("$__interval_s $__timeFilter_ms(ts)", ctx) == (
        "30 ts >= fromUnixTimestamp64Milli(1714557600000) "
        "AND ts <= fromUnixTimestamp64Milli(1714561200000)"
    )
    with pytest.raises(MacroError):
        render("$__timeGroupAlias(ts)", ctx)
    with pytest.raises(MacroError):
        render("$__timeFilter(toDateTime(ts))", ctx)
    with pytest.raises(MacroError):
        render("WHERE tenant = '$undefined'", ctx)


# -- running the SQL ----------------------------------------------------------------------


# -- a short real pipeline run ------------------------------------------------------------

WINDOW = 10.0
WINDOWS = 8


def _lines(start: float, n: int, errors: bool) -> list[str]:
    out = []
    for i in range(20):
        ts = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(start + i * 0.4))
        out.append(f"{ts},000 INFO [main] com.shop.Api: served request {i + n} for user{i % 3}")
    if errors:
        for i in range(5):
            ts = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(start + 8 + i * 0.2))
            out.append(f"{ts},000 ERROR [pool] com.shop.Db: Connection to db-1 refused ({i})")
    return out


@dataclass(frozen=True)
class Pipeline:
    directory: Path
    tenants: tuple[str, str]  # (pro, free)


@pytest.fixture(scope="module")
def pipeline(stack: StackState, tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    """Logs of two registered tenants through a real worker, with the embedded model on.

    Only the pro tenant's api source has errors: one pattern, so one model call
    (two with a repair round). The embedded model on two shared cores takes up
    to a minute or two per call, and every call here is paid by the whole suite.
    """
    tmp = tmp_path_factory.mktemp("dashboards")
    suffix = uuid.uuid4().hex[:6]
    pro, free = f"dash-pro-{suffix}", f"dash-free-{suffix}"
    add_tenant(stack, pro, "pro")
    add_tenant(stack, free, "free")
    t0 = (int(time.time() - 7200) // 60) * 60.0
    messages = [
        (
            f"{tenant}/{source}".encode(),
            LogBatch(
                tenant=tenant,
                source=source,
                lines=_lines(t0 + w * WINDOW, w, (tenant, source) == (pro, "api") and w >= 4),
            ).to_bytes(),
            None,
        )
        for tenant in (pro, free)
        for source in ("api", "db")
        for w in range(WINDOWS)
    ]
    worker = WorkerProcess(
        stack, tmp, window_seconds=WINDOW, allowed_lateness_seconds=0,
        window_idle_close_seconds=2, **WORKER_ENV,
    )  # fmt: skip
    worker.start()
    try:
        asyncio.run(produce(stack.kafka, "logs.raw", messages))
        # A usage record exists once the model has answered about the pro tenant's errors.
        wait_for(
            stack.kafka,
            "usage",
            lambda recs: pro in {r["tenant"] for r in recs},
            420,
            "the usage record of the model's judgement",
        )
        topics = ("logs.raw", "logs.windows", "findings", "usage")
        deadline = time.monotonic() + 90
        while asyncio.run(consumer_lag(KafkaConnection(stack.kafka), worker.app_id, topics, 4)):
            assert time.monotonic() < deadline, f"worker still behind:\n{worker.tail()}"
            time.sleep(1)
    finally:
        worker.stop()  # flushes the sink and releases the ClickHouse directory
    return Pipeline(tmp / "clickhouse", (pro, free))


@pytest.fixture(scope="module")
def pipeline_client(pipeline: Pipeline) -> Iterator[Client]:
    client = open_client(f"chdb://{pipeline.directory}")
    try:
        yield client
    finally:
        client.close()


# The module's pipeline run is set up inside whichever of these runs first.
PIPELINE_TIMEOUT = pytest.mark.timeout(600)


@PIPELINE_TIMEOUT
@pytest.mark.parametrize("panel", clickhouse_panels(), ids=lambda p: p.id)
def test_panel_sql_on_pipeline_data(
    panel: Panel, pipeline: Pipeline, pipeline_client: Client
) -> None:
    tenants = tenant_values(pipeline_client)
    assert set(pipeline.tenants) <= set(tenants), "the tenant variable misses a tenant"
    now = time.time()
    every = run_panel(pipeline_client, panel, context(panel.dashboard, tenants, now))
    check_shape(panel, every)
    judged = pipeline_client.query(
        "SELECT count() FROM findings FINAL WHERE model_used != 'rules'"
    ).result_rows[0][0]
    if panel.title == "Verdict-cache hit rate" and not judged:
        assert every.rows == []  # no finding the model judged: nothing to rate
        return
    assert every.rows, f"{panel.id} returned no rows"
    for tenant in pipeline.tenants:  # one tenant chosen: its rows only
        one = run_panel(pipeline_client, panel, context(panel.dashboard, [tenant], now))
        check_shape(panel, one)
        if "tenant" in one.columns:
            assert {row["tenant"] for row in one.rows} <= {tenant}, panel.id


@PIPELINE_TIMEOUT
def test_pipeline_usage_is_charged_to_the_tenants_tier(
    pipeline: Pipeline, pipeline_client: Client
) -> None:
    panel = panel_titled("Quota use: tokens this month, calls today (UTC)")
    ctx = context(panel.dashboard, list(pipeline.tenants), time.time())
    rows = by_tenant(run_panel(pipeline_client, panel, ctx).rows)
    settings = Settings()
    pro, free = pipeline.tenants
    assert free not in rows  # its logs had no errors: no model call, nothing charged
    assert rows[pro]["tier"] == "pro"
    assert rows[pro]["monthly_token_quota"] == settings.pro_tokens_per_month
    assert rows[pro]["daily_call_quota"] == settings.pro_calls_per_day
    charged = pipeline_client.query(
        "SELECT sum(toUInt64(prompt_tokens) + completion_tokens), count() FROM llm_usage FINAL "
        "WHERE tenant = {t:String}",
        parameters={"t": pro},
    ).result_rows[0]
    assert (rows[pro]["tokens_this_month"], rows[pro]["calls_today"]) == tuple(charged)
    assert rows[pro]["tokens_this_month"] > 0


@PIPELINE_TIMEOUT
def test_the_worker_set_the_retention_ttls_at_start(pipeline_client: Client) -> None:
    """The worker that wrote these tables applied the retention of its settings."""
    wanted = RetentionPolicy.from_settings(load_settings())
    for table in RETAINED_TABLES:
        assert current_ttl_days(pipeline_client, table) == wanted.days[table.name], table.name
