"""The dashboards' figures on rows whose answers are known.

Why next to the pipeline run of `test_dashboards.py`: there the data is real but
its figures are whatever the model and the clock made them; here rows go in
through the real `ClickHouseSink` from real schema objects (`Finding`,
`WindowDigest`, `UsageRecord`), chosen so that each panel has one right answer:
a verdict-cache hit rate of 1/2, a tier change inside the month, a row just
outside the time range or the month that must not count.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from dashboard_panels import (
    ECONOMY,
    OVERVIEW,
    Result,
    by_tenant,
    check_shape,
    context,
    panel_titled,
    run_panel,
    tenant_values,
)

from loglytics.schemas import Finding, TemplateCount, UsageRecord, WindowDigest
from loglytics.schemas.findings import FindingKind, Severity
from loglytics.settings import Settings
from loglytics.storage import ClickHouseSink, Client, migrate, open_client

ACME, GLOBEX = "acme", "globex"  # pro, free
MODEL = "smollm2-135m-instruct"


@dataclass(frozen=True)
class Data:
    now: float
    hour: float  # start of the hour every finding and window of the range falls in
    client: Client


def _finding(
    tenant: str, n: int, start: float, kind: FindingKind, severity: Severity, **kw: Any
) -> Finding:
    return Finding(
        finding_id=f"{tenant}-{n}", tenant=tenant, source="api", window_start=start,
        window_end=start + 60, kind=kind, category="availability", severity=severity,
        title=f"{kind} {n}", summary="", created_at=start + 61, **kw,
    )  # fmt: skip


def _window(source: str, start: float, counts: dict[str, tuple[str, int, bool]]) -> WindowDigest:
    templates = [
        TemplateCount(template_id=tid, template=text, count=n, level="INFO", new=new)
        for tid, (text, n, new) in counts.items()
    ]
    return WindowDigest(
        tenant=ACME, source=source, window_start=start, window_end=start + 60,
        line_count=sum(n for _, n, _ in counts.values()), templates=templates,
        new_template_ids=[tid for tid, (_, _, new) in counts.items() if new],
    )  # fmt: skip


def _usage(
    tenant: str, ts: float, n: int, task: str, tokens: tuple[int, int], **kw: Any
) -> UsageRecord:
    fields: dict[str, Any] = {"tier": "pro" if tenant == ACME else "free"} | kw
    return UsageRecord(
        tenant=tenant, ts=ts, request_id=f"{tenant}-r{n}", task=task,
        prompt_tokens=tokens[0], completion_tokens=tokens[1],
        **({"provider": "embedded", "model": MODEL} | fields),
    )  # fmt: skip


def _bucket_start(now: float) -> float:
    """A start that keeps every usage row in one `$__timeInterval` bucket of the test's range."""
    interval = context(ECONOMY, [], now).interval_s
    return math.floor((now - 120) / interval) * interval + 1


def _month_before(now: float) -> float:
    first = datetime.fromtimestamp(now, tz=UTC).replace(day=1, hour=0, minute=0, second=0)
    return (first - timedelta(days=2)).timestamp()


def _rows(now: float) -> tuple[list[Finding], list[WindowDigest], list[UsageRecord]]:
    hour = math.floor(now / 3600) * 3600 - 3600
    findings = [
        _finding(ACME, 1, hour, "error", "high"),
        _finding(ACME, 2, hour + 60, "error", "high", model_used=MODEL),  # verdict from the cache
        _finding(ACME, 3, hour + 120, "anomaly", "medium", model_used=MODEL, tokens_used=40),
        _finding(GLOBEX, 4, hour + 180, "error", "critical"),
        _finding(ACME, 5, now - 30 * 3600, "error", "low"),  # before the range
    ]
    db = "db refused <*>"
    windows = [
        _window("api", hour, {"t1": ("GET /a <*>", 100, True), "t2": (db, 20, True)}),
        _window("api", hour + 60, {"t1": ("GET <*> <*>", 50, False), "t2": (db, 10, False)}),
        _window("db", hour, {"t3": ("vacuum <*>", 30, True)}),
    ]
    at = _bucket_start(now)
    usage = [
        _usage(ACME, at, 0, "summarize", (5, 5), tier="free", provider="vllm", model="m2",
               latency_ms=10.0),  # before the upgrade to pro
        _usage(ACME, at + 1, 1, "detect", (100, 20), latency_ms=100.0),
        _usage(ACME, at + 2, 2, "detect", (200, 40), latency_ms=200.0),
        _usage(ACME, at + 3, 3, "detect", (0, 0), cached=True, latency_ms=1.0),
        _usage(ACME, at + 4, 4, "detect", (50, 10), latency_ms=300.0),
        _usage(ACME, at + 5, 5, "summarize", (10, 5), provider="vllm", model="m2",
               estimated=True, latency_ms=50.0),
        _usage(GLOBEX, at + 6, 6, "detect", (30, 0), latency_ms=80.0),
        _usage(GLOBEX, at + 7, 7, "detect", (0, 0), cached=True, latency_ms=1.0),
        _usage(ACME, _month_before(now), 8, "detect", (1000, 0), latency_ms=5000.0),  # last month
    ]  # fmt: skip
    return findings, windows, usage


async def _write(client: Client, now: float) -> None:
    findings, windows, usage = _rows(now)
    sink = ClickHouseSink(client)
    await sink.start()
    sink.add_findings(findings)
    for digest in windows:
        sink.add_window(digest)
    for record in usage:
        sink.add_usage(record)
    await sink.stop()
    assert sink.rows_rejected == 0


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Data]:
    path: Path = tmp_path_factory.mktemp("dashboard-values")
    client = open_client(f"chdb://{path}?database=values")
    migrate(client)
    now = time.time()
    asyncio.run(_write(client, now))
    try:
        yield Data(now, math.floor(now / 3600) * 3600 - 3600, client)
    finally:
        client.close()


def panel(data: Data, dashboard: str, title: str, tenants: list[str]) -> Result:
    chosen = panel_titled(title)
    assert chosen.dashboard == dashboard
    result = run_panel(data.client, chosen, context(dashboard, tenants, data.now))
    check_shape(chosen, result)
    return result


def when(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC).replace(tzinfo=None)


def test_the_tenant_variable_lists_every_tenant(data: Data) -> None:
    assert tenant_values(data.client) == [ACME, GLOBEX]


def test_findings_by_severity(data: Data) -> None:
    rows = panel(data, OVERVIEW, "Findings by severity", [ACME]).rows
    assert [(r["severity"], r["findings"]) for r in rows] == [("high", 2), ("medium", 1)]
    both = panel(data, OVERVIEW, "Findings by severity", [ACME, GLOBEX]).rows
    assert [(r["severity"], r["findings"]) for r in both] == [
        ("critical", 1), ("high", 2), ("medium", 1),
    ]  # fmt: skip


def test_findings_per_hour_by_kind_and_severity(data: Data) -> None:
    rows = panel(data, OVERVIEW, "Findings per hour by kind and severity", [ACME]).rows
    hour = when(data.hour)
    assert sorted((r["time"], r["kind"], r["severity"], r["findings"]) for r in rows) == [
        (hour, "anomaly", "medium", 1), (hour, "error", "high", 2),
    ]  # fmt: skip


def test_lines_per_minute_add_up_to_the_lines(data: Data) -> None:
    ctx = context(OVERVIEW, [ACME], data.now)
    bucket_minutes = max(ctx.interval_s, 60) / 60
    rows = panel(data, OVERVIEW, "Lines per minute per source", [ACME]).rows
    lines: dict[str, float] = {}
    for r in rows:
        lines[r["source"]] = lines.get(r["source"], 0.0) + r["lines_per_minute"] * bucket_minutes
    assert lines == pytest.approx({"api": 180.0, "db": 30.0})


def test_new_templates_over_time(data: Data) -> None:
    rows = panel(data, OVERVIEW, "New templates over time", [ACME]).rows
    totals: dict[str, int] = {}
    for r in rows:
        totals[r["source"]] = totals.get(r["source"], 0) + r["new_templates"]
    assert totals == {"api": 2, "db": 1}


def test_top_templates(data: Data) -> None:
    rows = panel(data, OVERVIEW, "Top templates", [ACME]).rows
    assert rows[0]["template_id"] == "t1"
    assert rows[0]["template"] == "GET <*> <*>"  # the latest text of an evolving template
    assert {(r["template_id"], r["lines"], r["windows"]) for r in rows} == {
        ("t1", 150, 2), ("t2", 30, 2), ("t3", 30, 1),
    }  # fmt: skip


def test_latest_findings(data: Data) -> None:
    rows = panel(data, OVERVIEW, "Latest findings", [ACME, GLOBEX]).rows
    assert [r["title"] for r in rows] == ["error 4", "anomaly 3", "error 2", "error 1"]
    assert {r["model_used"] for r in rows} == {"rules", MODEL}


def test_quota_use(data: Data) -> None:
    rows = by_tenant(
        panel(data, ECONOMY, "Quota use: tokens this month, calls today (UTC)", [ACME, GLOBEX]).rows
    )
    settings = Settings()
    acme, globex = rows[ACME], rows[GLOBEX]
    assert acme["tier"] == "pro"  # the tier of its latest call: upgraded this month
    assert acme["tokens_this_month"] == 445  # last month's 1,000 tokens do not count
    assert acme["monthly_token_quota"] == settings.pro_tokens_per_month
    assert acme["month_used"] == pytest.approx(445 / settings.pro_tokens_per_month)
    assert (acme["calls_today"], acme["daily_call_quota"]) == (6, settings.pro_calls_per_day)
    assert acme["day_used"] == pytest.approx(6 / settings.pro_calls_per_day)
    assert (globex["tier"], globex["tokens_this_month"], globex["calls_today"]) == ("free", 30, 2)
    assert globex["monthly_token_quota"] == settings.free_tokens_per_month
    assert globex["daily_call_quota"] == settings.free_calls_per_day


def test_tokens_per_tenant_per_day(data: Data) -> None:
    rows = panel(data, ECONOMY, "Tokens per tenant per day", [ACME, GLOBEX]).rows
    assert {(r["tenant"], r["tokens"]) for r in rows} == {(ACME, 445), (GLOBEX, 30)}
    assert all(r["time"].hour == 0 and r["time"].minute == 0 for r in rows)


def test_calls_per_provider_and_model(data: Data) -> None:
    rows = panel(data, ECONOMY, "Calls per provider and model", [ACME]).rows
    assert {(r["provider"], r["model"], r["calls"]) for r in rows} == {
        ("embedded", MODEL, 4), ("vllm", "m2", 2),
    }  # fmt: skip


def test_response_cache_hit_rate(data: Data) -> None:
    rows = panel(data, ECONOMY, "Response-cache hit rate by task", [ACME]).rows
    assert {r["task"]: r["hit_rate"] for r in rows} == {"detect": 0.25, "summarize": 0.0}


def test_verdict_cache_hit_rate(data: Data) -> None:
    rows = panel(data, ECONOMY, "Verdict-cache hit rate", [ACME]).rows
    assert [(r["time"], r["verdict_cache_hit_rate"]) for r in rows] == [(when(data.hour), 0.5)]
    assert panel(data, ECONOMY, "Verdict-cache hit rate", [GLOBEX]).rows == []  # rules only


def test_latency_percentiles_leave_cache_hits_out(data: Data) -> None:
    rows = panel(data, ECONOMY, "Latency percentiles (uncached calls)", [ACME]).rows
    assert len(rows) == 1
    row = rows[0]
    assert row["p50"] == pytest.approx(100.0)  # of 10, 50, 100, 200, 300 (the 1 ms hit is out)
    assert 200.0 <= row["p95"] <= row["p99"] <= 300.0


def test_tokens_per_finding(data: Data) -> None:
    rows = by_tenant(panel(data, ECONOMY, "Tokens per finding", [ACME, GLOBEX]).rows)
    assert (rows[ACME]["detect_tokens"], rows[ACME]["findings"]) == (420, 3)
    assert rows[ACME]["model_judged"] == 2
    assert rows[ACME]["tokens_per_finding"] == pytest.approx(140.0)
    assert rows[GLOBEX]["tokens_per_finding"] == pytest.approx(30.0)


def test_calls_by_provider_model_and_task(data: Data) -> None:
    rows = panel(data, ECONOMY, "Calls by provider, model and task", [ACME]).rows
    got = {(r["provider"], r["task"]): r for r in rows}
    detect, summarize = got[("embedded", "detect")], got[("vllm", "summarize")]
    assert (detect["calls"], detect["cached_calls"], detect["estimated_calls"]) == (4, 1, 0)
    assert (detect["prompt_tokens"], detect["completion_tokens"]) == (350, 70)
    assert detect["p50_ms"] == pytest.approx(200.0)
    assert (summarize["calls"], summarize["estimated_calls"], summarize["p50_ms"]) == (
        2, 1, pytest.approx(30.0),
    )  # fmt: skip
