"""Retention: TTLs from settings, set at start, changed by the next start; expired rows go.

Against the embedded ClickHouse (chdb): one engine per module, one database per
test. Rows go in through the real `ClickHouseSink`. Rows inserted already past a
TTL are dropped by the server at insert, so old rows are written under a long
retention and a later start shortens it, which is also the case that matters in
production: a setting lowered on a database that holds years of data.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from loglytics.schemas import Finding, Incident, TemplateCount, UsageRecord, WindowDigest
from loglytics.settings import SettingsError, load_settings
from loglytics.storage import ClickHouseSink, Client, TemplateRow, migrate, open_client
from loglytics.storage.retention import (
    RETAINED_TABLES,
    USAGE_MIN_DAYS,
    RetentionPolicy,
    apply_retention,
    current_ttl_days,
)
from loglytics.storage.tables import FINDINGS, LLM_USAGE, TENANTS

DAY = 86400.0
NOW = time.time()
OLD, NEW = NOW - 40 * DAY, NOW - 1 * DAY


def policy(**settings: Any) -> RetentionPolicy:
    return RetentionPolicy.from_settings(load_settings(**settings))


@pytest.fixture(scope="module")
def engine_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("retention")
    keeper = open_client(f"chdb://{path}")  # one engine for the module
    try:
        yield path
    finally:
        keeper.close()


@pytest.fixture
def client(engine_dir: Path) -> Iterator[Client]:
    c = open_client(f"chdb://{engine_dir}?database=r_{uuid.uuid4().hex[:12]}")
    migrate(c)
    try:
        yield c
    finally:
        c.close()


def test_defaults_keep_usage_longest() -> None:
    days = policy().days
    assert days == {
        "findings": 90, "window_stats": 90, "windows": 90, "templates": 90, "incidents": 90,
        "llm_usage": USAGE_MIN_DAYS,
    }  # fmt: skip


def test_overrides_and_usage_following_the_longest() -> None:
    days = policy(retention_days=30, retention_window_stats_days=7, retention_findings_days=60).days
    assert (days["windows"], days["window_stats"], days["findings"]) == (30, 7, 60)
    assert days["llm_usage"] == USAGE_MIN_DAYS
    assert policy(retention_findings_days=800).days["llm_usage"] == 800
    assert policy(retention_window_stats_days=0).days["llm_usage"] == 0  # something kept forever
    assert policy(retention_usage_days=500).days["llm_usage"] == 500
    incidents = policy(retention_days=30, retention_incidents_days=180).days
    assert (incidents["incidents"], incidents["findings"]) == (180, 30)
    assert incidents["llm_usage"] == USAGE_MIN_DAYS
    assert policy(retention_incidents_days=500).days["llm_usage"] == 500


def test_usage_kept_shorter_than_the_rest_is_refused() -> None:
    with pytest.raises(SettingsError, match="RETENTION_USAGE_DAYS"):
        load_settings(retention_days=90, retention_usage_days=30)
    with pytest.raises(SettingsError, match="RETENTION_USAGE_DAYS"):
        load_settings(retention_findings_days=0, retention_usage_days=400)
    with pytest.raises(SettingsError, match="RETENTION_USAGE_DAYS"):
        load_settings(retention_incidents_days=500, retention_usage_days=400)
    assert load_settings(retention_usage_days=0).retention_usage_days == 0  # forever is fine


def test_first_start_sets_every_ttl_and_the_next_start_changes_nothing(client: Client) -> None:
    wanted = policy()
    assert apply_retention(client, wanted) == dict(wanted.days)
    for table in RETAINED_TABLES:
        assert current_ttl_days(client, table) == wanted.days[table.name], table.name
    assert current_ttl_days(client, TENANTS) is None  # configuration, not data: kept
    assert apply_retention(client, wanted) == {}


def test_a_changed_setting_changes_the_ttl_at_the_next_start(client: Client) -> None:
    apply_retention(client, policy())
    assert apply_retention(client, policy(retention_findings_days=30)) == {"findings": 30}
    assert current_ttl_days(client, FINDINGS) == 30
    assert apply_retention(client, policy(retention_findings_days=0, retention_usage_days=0)) == {
        "findings": 0, "llm_usage": 0,
    }  # fmt: skip
    assert current_ttl_days(client, FINDINGS) is None
    assert current_ttl_days(client, LLM_USAGE) is None


def test_a_ttl_written_by_hand_is_replaced(client: Client) -> None:
    client.command("ALTER TABLE findings MODIFY TTL toDateTime(created_at) + INTERVAL 1 DAY")
    assert current_ttl_days(client, FINDINGS) == -1
    assert apply_retention(client, policy())["findings"] == 90
    assert current_ttl_days(client, FINDINGS) == 90


def _finding(n: int, at: float) -> Finding:
    return Finding(
        finding_id=f"f{n}", tenant="a", source="api", window_start=at, window_end=at + 60,
        kind="error", category="availability", severity="high", title=f"f{n}", summary="",
        created_at=at + 61,
    )  # fmt: skip


def _window(at: float) -> WindowDigest:
    tpl = TemplateCount(template_id="t1", template="GET <*>", count=3, level="INFO")
    return WindowDigest(
        tenant="a", source="api", window_start=at, window_end=at + 60, line_count=3,
        templates=[tpl],
    )  # fmt: skip


def _usage(n: int, at: float) -> UsageRecord:
    return UsageRecord(
        tenant="a", tier="free", task="detect", provider="embedded", model="m",
        prompt_tokens=10, completion_tokens=2, ts=at, request_id=f"r{n}",
    )  # fmt: skip


def _template(n: int, at: float) -> TemplateRow:
    return TemplateRow(
        tenant="a", source="api", template_id=f"t{n}", template="x", first_seen=at - DAY,
        last_seen=at, count=1,
    )  # fmt: skip


def _incident(n: int, at: float) -> Incident:
    return Incident(
        incident_id=f"i{n}", tenant="a", event="opened", version=1, status="open",
        sources=["api"], severity="high", title=f"i{n}", summary="", opened_at=at,
        updated_at=at, first_window_start=at - 60, last_window_end=at,
    )  # fmt: skip


async def _write(client: Client) -> None:
    sink = ClickHouseSink(client)
    await sink.start()
    sink.add_findings([_finding(1, OLD), _finding(2, NEW)])
    sink.add_window(_window(OLD))
    sink.add_window(_window(NEW))
    sink.add_templates(_template(n, at) for n, at in ((1, OLD), (2, NEW)))
    sink.add_usage(_usage(1, OLD))
    sink.add_usage(_usage(2, NEW))
    sink.add_incident(_incident(1, OLD))
    sink.add_incident(_incident(2, NEW))
    await sink.stop()


def _ages(client: Client) -> dict[str, list[str]]:
    """Per retained table, which rows are left ("old", "new") after a forced merge."""
    left: dict[str, list[str]] = {}
    for table in RETAINED_TABLES:
        client.command(f"OPTIMIZE TABLE {table.name} FINAL")
        column = table.planner.time_column if table.planner else ""
        rows = client.query(
            f"SELECT if(toDateTime({column}) < toDateTime({int(NOW - 10 * DAY)}), 'old', 'new') "
            f"AS age FROM {table.name} ORDER BY age DESC"
        ).result_rows
        left[table.name] = [str(r[0]) for r in rows]
    return left


def test_rows_older_than_the_ttl_go_after_a_merge_and_newer_ones_stay(client: Client) -> None:
    apply_retention(client, policy())  # first start: 90 days, usage 400
    asyncio.run(_write(client))
    both = ["old", "new"]
    assert _ages(client) == dict.fromkeys((t.name for t in RETAINED_TABLES), both)

    apply_retention(client, policy(retention_days=30))  # next start, a shorter retention
    left = _ages(client)
    assert left == {
        "findings": ["new"], "window_stats": ["new"], "windows": ["new"], "templates": ["new"],
        "incidents": ["new"], "llm_usage": both,  # billing data: still 400 days
    }  # fmt: skip

    apply_retention(client, policy(retention_days=30, retention_usage_days=30))
    assert _ages(client)["llm_usage"] == ["new"]
