"""The provisioned dashboards' ClickHouse panels, and how a test runs and judges one.

Shared by `test_dashboards.py` (static checks and a real pipeline run) and
`test_dashboards_values.py` (known rows, known answers). `PANEL_COLUMNS` is the
contract: the columns each panel's visualisation and overrides read; a panel
added without one fails `test_every_clickhouse_panel_has_a_column_contract`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from grafana_sql import QueryContext, VariableValue, grafana_interval, render

from loglytics.storage import Client

ROOT = Path(__file__).resolve().parents[1]
PROVISIONING = ROOT / "deploy" / "grafana" / "provisioning"
DASHBOARDS = PROVISIONING / "dashboards"
CLICKHOUSE = "grafana-clickhouse-datasource"
OVERVIEW = "loglytics-overview"
ECONOMY = "loglytics-llm-economy"
TIME_TYPES = ("DateTime", "Date")

PANEL_COLUMNS: dict[str, dict[str, frozenset[str]]] = {
    OVERVIEW: {
        "Findings by severity": frozenset({"severity", "findings"}),
        "Findings per hour by kind and severity": frozenset(
            {"time", "kind", "severity", "findings"}
        ),
        "Lines per minute per source": frozenset({"time", "source", "lines_per_minute"}),
        "New templates over time": frozenset({"time", "source", "new_templates"}),
        "Top templates": frozenset(
            {"tenant", "source", "template_id", "template", "level", "lines", "windows"}
            | {"last_seen"}
        ),
        "Latest findings": frozenset(
            {"window_start", "tenant", "source", "kind", "severity", "title", "model_used"}
            | {"category", "confidence"}
        ),
    },
    ECONOMY: {
        "Quota use: tokens this month, calls today (UTC)": frozenset(
            {"tenant", "tier", "tokens_this_month", "monthly_token_quota", "month_used"}
            | {"calls_today", "daily_call_quota", "day_used"}
        ),
        "Tokens per tenant per day": frozenset({"time", "tenant", "tokens"}),
        "Calls per provider and model": frozenset({"time", "provider", "model", "calls"}),
        "Response-cache hit rate by task": frozenset({"time", "task", "hit_rate"}),
        "Verdict-cache hit rate": frozenset({"time", "verdict_cache_hit_rate"}),
        "Latency percentiles (uncached calls)": frozenset({"time", "p50", "p95", "p99"}),
        "Tokens per finding": frozenset(
            {"tenant", "detect_tokens", "findings", "model_judged", "tokens_per_finding"}
        ),
        "Calls by provider, model and task": frozenset(
            {"provider", "model", "task", "calls", "cached_calls", "prompt_tokens"}
            | {"completion_tokens", "estimated_calls", "p50_ms"}
        ),
    },
}


@dataclass(frozen=True)
class Panel:
    """One ClickHouse panel query, with what a test needs to judge its result."""

    dashboard: str
    title: str
    kind: str
    format: int
    sql: str
    override_columns: frozenset[str]

    @property
    def timeseries(self) -> bool:
        return self.format == 0

    @property
    def id(self) -> str:
        return f"{self.dashboard}:{self.title}"


@dataclass(frozen=True)
class Result:
    columns: tuple[str, ...]
    types: tuple[str, ...]
    rows: list[dict[str, Any]]


def load_dashboards() -> dict[str, dict[str, Any]]:
    docs = [json.loads(p.read_text()) for p in sorted(DASHBOARDS.glob("*.json"))]
    return {doc["uid"]: doc for doc in docs}


def clickhouse_dashboards() -> dict[str, dict[str, Any]]:
    """The dashboards on the ClickHouse datasource (the worker's reads Prometheus)."""
    return {
        uid: doc
        for uid, doc in load_dashboards().items()
        if any(
            (t.get("datasource") or p.get("datasource") or {}).get("type") == CLICKHOUSE
            for p in doc["panels"]
            for t in p.get("targets", [])
        )
    }


def variable(doc: dict[str, Any], name: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [v for v in doc["templating"]["list"] if v["name"] == name]
    assert found, f"{doc['uid']} has no variable {name}"
    return found[0]


def constants(doc: dict[str, Any]) -> dict[str, str]:
    return {
        v["name"]: str(v["query"]) for v in doc["templating"]["list"] if v["type"] == "constant"
    }


def _overrides(panel: dict[str, Any]) -> frozenset[str]:
    return frozenset(
        o["matcher"]["options"]
        for o in panel.get("fieldConfig", {}).get("overrides", [])
        if o["matcher"]["id"] == "byName"
    )


def clickhouse_panels() -> list[Panel]:
    panels = []
    for uid, doc in load_dashboards().items():
        for panel in doc["panels"]:
            for target in panel.get("targets", []):
                source = target.get("datasource") or panel.get("datasource") or {}
                if source.get("type") != CLICKHOUSE:
                    continue
                title, kind, fmt = panel["title"], panel["type"], int(target["format"])
                panels.append(Panel(uid, title, kind, fmt, target["rawSql"], _overrides(panel)))
    return panels


def panel_titled(title: str) -> Panel:
    return next(p for p in clickhouse_panels() if p.title == title)


def tenant_values(client: Client) -> list[str]:
    """What the tenant variable offers: its own query, run on this database."""
    sql = variable(load_dashboards()[OVERVIEW], "tenant")["query"]
    return [str(r[0]) for r in client.query(sql).result_rows]


def context(dashboard: str, tenants: list[str], now: float) -> QueryContext:
    """The default dashboard state (last 24 h) with these tenants picked."""
    end = datetime.fromtimestamp(now + 60, tz=UTC)
    start = end - timedelta(hours=24)
    values: dict[str, VariableValue] = {
        "tenant": tenants,
        **constants(load_dashboards()[dashboard]),
    }
    return QueryContext(start, end, grafana_interval(start, end), values)


def run_panel(client: Client, panel: Panel, ctx: QueryContext) -> Result:
    """Rows as dicts; columns from DESCRIBE, which answers even when no row comes back."""
    sql = render(panel.sql, ctx)
    described = client.query(f"DESCRIBE ({sql})").result_rows
    columns = tuple(str(r[0]) for r in described)
    types = tuple(str(r[1]) for r in described)
    rows = [dict(zip(columns, row, strict=True)) for row in client.query(sql).result_rows]
    return Result(columns, types, rows)


def check_shape(panel: Panel, result: Result) -> None:
    """The columns the panel reads are there; a time series starts with its time, in order."""
    wanted = PANEL_COLUMNS[panel.dashboard][panel.title] | panel.override_columns
    missing = wanted - set(result.columns)
    assert not missing, f"{panel.id}: no column {sorted(missing)}"
    if panel.timeseries:
        assert result.columns[0] == "time", panel.id
        assert result.types[0].startswith(TIME_TYPES), f"{panel.id}: {result.types[0]}"
        times = [row["time"] for row in result.rows]
        assert times == sorted(times), f"{panel.id}: the plugin needs rows in time order"


def by_tenant(rows: list[dict[str, Any]]) -> Mapping[str, dict[str, Any]]:
    return {str(row["tenant"]): row for row in rows}
