"""Storage against a real embedded ClickHouse (chdb) in a temporary directory.

One engine per module (chdb allows one data directory per process); each test
that needs clean totals gets its own database in that engine.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from loglytics.schemas import (
    Evidence,
    Finding,
    TemplateCount,
    TenantRecord,
    UsageRecord,
    WindowDigest,
)
from loglytics.storage import (
    ClickHouseSink,
    Client,
    DsnError,
    SinkError,
    SinkFullError,
    TemplateRow,
    count_findings,
    findings_for,
    get_finding,
    migrate,
    open_client,
    redact_dsn,
    tokens_by_tenant,
    usage_summary,
)
from loglytics.storage.client import chdb_location
from loglytics.storage.schema import MIGRATIONS, TABLES, VIEWS

NOW = time.time()


@pytest.fixture(scope="module")
def engine_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("chdb")
    # Keep one client open for the module so the engine is not restarted per test.
    keeper = open_client(f"chdb://{path}")
    try:
        yield path
    finally:
        keeper.close()


@pytest.fixture
def client(engine_dir: Path) -> Iterator[Client]:
    """A migrated, empty database of its own."""
    c = open_client(f"chdb://{engine_dir}?database=t_{uuid.uuid4().hex[:12]}")
    migrate(c)
    try:
        yield c
    finally:
        c.close()


def make_finding(tenant: str = "a", n: int = 0, **kw: Any) -> Finding:
    base: dict[str, Any] = dict(
        finding_id=f"{tenant}-f{n}",
        tenant=tenant,
        source="api",
        window_start=NOW - 120 - n,
        window_end=NOW - 60 - n,
        kind="error",
        category="db",
        severity="high",
        title=f"title {n}",
        summary="connection refused",
        evidence=Evidence(template_ids=["t1"], counts={"t1": 3}, exemplars=["boom"]),
        recommendations=["restart db"],
        confidence=0.9,
        model_used="rules",
        tokens_used=12,
        created_at=NOW,
    )
    base.update(kw)
    return Finding(**base)


def make_window(tenant: str = "a", count: int = 7) -> WindowDigest:
    return WindowDigest(
        tenant=tenant,
        source="api",
        window_start=NOW - 60,
        window_end=NOW,
        line_count=count + 3,
        level_counts={"ERROR": 3, "INFO": count},
        templates=[
            TemplateCount(
                template_id="t1", template="conn <*> refused", count=count, level="ERROR"
            ),
            TemplateCount(template_id="t2", template="ok <*>", count=3, new=True),
        ],
        new_template_ids=["t2"],
    )


def make_usage(tenant: str = "a", n: int = 0, model: str = "m1") -> UsageRecord:
    return UsageRecord(
        tenant=tenant,
        tier="free",
        task="chat",
        provider="llamacpp",
        model=model,
        prompt_tokens=10,
        completion_tokens=5,
        ts=NOW - n,
        request_id=f"r{n}",
    )


async def _write(c: Client, fill: Any) -> ClickHouseSink:
    sink = ClickHouseSink(c, flush_interval_ms=20)
    await sink.start()
    fill(sink)
    await sink.stop(timeout=10)
    return sink


# -- client / DSN -------------------------------------------------------------------------


def test_chdb_dsn_forms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert chdb_location("chdb:///./.loglytics/ch") == (str(tmp_path / ".loglytics/ch"), None)
    assert chdb_location("chdb://rel/dir?database=x") == (str(tmp_path / "rel/dir"), "x")
    assert chdb_location("chdb:///abs/dir") == ("/abs/dir", None)
    assert chdb_location("chdb://memory") == (None, None)
    assert chdb_location("chdb://:memory:?database=d") == (None, "d")
    with pytest.raises(DsnError):
        open_client("mysql://x")
    assert "s3cret" not in redact_dsn("http://u:s3cret@h:8123/db")
    with pytest.raises(DsnError) as err:  # a closed port: fails at open, password redacted
        open_client("http://u:s3cret@127.0.0.1:1/db")
    assert "s3cret" not in str(err.value)


def test_close_releases_the_directory_lock(tmp_path: Path) -> None:
    """A process that closed its client lets another process open the same directory."""
    script = textwrap.dedent(
        f"""
        import subprocess, sys
        from loglytics.storage import open_client, migrate
        c = open_client("chdb://{tmp_path}/ch")
        migrate(c)
        c.close()
        child = (
            "from loglytics.storage import open_client; "
            "c = open_client('chdb://{tmp_path}/ch'); "
            "print(c.query('SELECT count() FROM findings').result_rows)"
        )
        out = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True)
        print(out.stdout.strip(), out.returncode)
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip().splitlines()[-1] == "[(0,)] 0", out.stderr[-2000:]


# -- schema -------------------------------------------------------------------------------


def test_migrations_are_idempotent(engine_dir: Path) -> None:
    c = open_client(f"chdb://{engine_dir}?database=mig_{uuid.uuid4().hex[:8]}")
    try:
        versions = [m.version for m in MIGRATIONS]
        assert versions == sorted(versions) and versions[0] == 1
        assert migrate(c) == versions
        assert migrate(c) == []
        assert c.query("SELECT count() FROM schema_migrations").result_rows == [(len(versions),)]
        names = {r[0] for r in c.query("SHOW TABLES").result_rows}
        assert set(TABLES) | set(VIEWS) | {"schema_migrations"} <= names
    finally:
        c.close()


# -- round trips and dedupe ---------------------------------------------------------------


async def test_every_table_round_trips(client: Client) -> None:
    def fill(sink: ClickHouseSink) -> None:
        sink.add_findings([make_finding(n=0), make_finding(n=1, severity="low")])
        sink.add_window(make_window())
        sink.add_templates(
            [TemplateRow(tenant="a", source="api", template_id="t1", template="conn <*> refused",
                         level="ERROR", first_seen=NOW - 3600, last_seen=NOW, count=70)]
        )  # fmt: skip
        sink.add_usage(make_usage(n=0))
        sink.add_usage(make_usage(n=1, model="m2"))
        sink.add_tenant(TenantRecord(tenant="a", tier="pro", api_key_hashes=["h"], updated_at=NOW))

    sink = await _write(client, fill)
    assert sink.rows_written == 2 + 3 + 1 + 2 + 1 and sink.rows_pending == 0

    found = findings_for(client, "a", since=NOW - 3600)
    assert [f.finding_id for f in found] == ["a-f0", "a-f1"]
    assert found[0] == make_finding(n=0).model_copy(
        update={"window_start": found[0].window_start, "window_end": found[0].window_end,
                "created_at": found[0].created_at}
    )  # fmt: skip
    assert abs(found[0].window_start - (NOW - 120)) < 0.002
    assert client.query("SELECT count(), sum(count) FROM window_stats").result_rows == [(2, 10)]
    assert client.query("SELECT line_count, level_counts['ERROR'] FROM windows").result_rows == [
        (10, 3)
    ]
    top = client.query("SELECT template_id, total FROM v_top_templates ORDER BY total DESC")
    assert top.result_rows == [("t1", 7), ("t2", 3)]
    new = client.query("SELECT template_id, count FROM v_new_templates").result_rows
    assert new == [("t1", 70)]
    assert client.query("SELECT tenant, tier, enabled FROM tenants").result_rows == [
        ("a", "pro", True)
    ]
    assert "api_key_hashes" not in {r[0] for r in client.query("DESCRIBE tenants").result_rows}
    summary = usage_summary(client, "a")
    assert {(r["model"], r["calls"], r["total_tokens"]) for r in summary} == {
        ("m1", 1, 15),
        ("m2", 1, 15),
    }
    assert tokens_by_tenant(client) == {"a": 30}
    hourly = client.query("SELECT severity, sum(findings) FROM v_findings_hourly GROUP BY severity")
    assert sorted(tuple(r) for r in hourly.result_rows) == [("high", 1), ("low", 1)]


async def test_replays_do_not_double_count(client: Client) -> None:
    for _ in range(2):  # the same rows twice, in separate inserts (a Kafka replay)
        await _write(
            client,
            lambda s: (
                s.add_findings([make_finding(n=0)]),
                s.add_window(make_window()),
                s.add_usage(make_usage(n=0)),
            ),
        )
    # a later revision of the same finding and tenant wins
    await _write(
        client,
        lambda s: (
            s.add_findings([make_finding(n=0, severity="critical")]),
            s.add_tenant(TenantRecord(tenant="a", tier="free", updated_at=NOW)),
            s.add_tenant(TenantRecord(tenant="a", tier="pro", updated_at=NOW + 1)),
        ),
    )
    assert count_findings(client) == 1 and count_findings(client, "a") == 1
    assert get_finding(client, "a", "a-f0").severity == "critical"  # type: ignore[union-attr]
    hourly = client.query("SELECT severity, findings FROM v_findings_hourly").result_rows
    assert hourly == [("critical", 1)]
    assert client.query("SELECT total FROM v_top_templates WHERE template_id='t1'").result_rows == [
        (7,)
    ]
    assert tokens_by_tenant(client) == {"a": 15}
    assert client.query("SELECT tier FROM tenants FINAL").result_rows == [("pro",)]


async def test_reads_are_tenant_scoped(client: Client) -> None:
    await _write(client, lambda s: s.add_findings([make_finding("a", 0), make_finding("b", 0)]))
    assert get_finding(client, "a", "b-f0") is None
    assert get_finding(client, "b", "b-f0") is not None
    assert [f.tenant for f in findings_for(client, "a")] == ["a"]
    assert count_findings(client, "b") == 1 and count_findings(client) == 2


# -- the sink under failure ---------------------------------------------------------------


class FlakyClient:
    """Fails the first ``fail`` inserts; the ``lose_ack``-th insert lands but reports failure."""

    def __init__(self, inner: Client, fail: int = 0, lose_ack: int | None = None) -> None:
        self.inner, self.fail, self.lose_ack, self.calls = inner, fail, lose_ack, 0

    def insert(self, table: str | None = None, data: Any = None, **kw: Any) -> Any:
        self.calls += 1
        if self.calls <= self.fail:
            raise ConnectionError("ClickHouse is down")
        result = self.inner.insert(table, data, **kw)
        if self.calls == self.lose_ack:
            raise TimeoutError("response lost after the insert landed")
        return result


async def test_sink_retries_until_rows_land_exactly_once(client: Client) -> None:
    flaky = FlakyClient(client, fail=3, lose_ack=5)
    sink = ClickHouseSink(flaky, flush_interval_ms=10, max_batch_rows=4, retry_base_s=0.01)
    await sink.start()
    sink.add_findings([make_finding(n=i) for i in range(6)])
    for i in range(10):
        sink.add_usage(make_usage(n=i))
    await sink.flush(timeout=10)
    await sink.stop()
    assert sink.failures == 4 and sink.rows_pending == 0
    assert count_findings(client, "a") == 6
    # Without FINAL: the lost-ack batch was retried as the same block (same rows and dedup
    # token), which the server drops, so it is not stored twice.
    assert client.query("SELECT count() FROM llm_usage").result_rows == [(10,)]
    assert client.query("SELECT count() FROM findings").result_rows == [(6,)]
    assert tokens_by_tenant(client) == {"a": 150}


async def test_stop_reports_rows_it_could_not_write(client: Client) -> None:
    sink = ClickHouseSink(FlakyClient(client, fail=10**6), flush_interval_ms=10, retry_base_s=0.01)
    await sink.start()
    sink.add_findings([make_finding(n=0)])
    with pytest.raises(SinkError) as err:
        await sink.stop(timeout=0.3)
    assert err.value.pending == 1 and sink.failures >= 1
    assert "ClickHouse is down" in str(err.value)


async def test_a_row_that_cannot_be_encoded_does_not_wedge_the_queue(client: Client) -> None:
    sink = ClickHouseSink(client, flush_interval_ms=10)
    sink.add_findings([make_finding(n=i) for i in range(5)])
    bad = make_window()
    bad.templates[0].level = None  # type: ignore[assignment]  # a producer bug, not validated
    sink.add_window(bad)
    sink.add_usage(make_usage())
    await sink.flush(timeout=10)
    assert sink.rows_rejected == 1 and sink.rejected[0][0] == "window_stats"
    assert sink.rows_written == 5 + 1 + 1 + 1 and sink.rows_pending == 0
    assert count_findings(client, "a") == 5


async def test_backpressure_is_all_or_nothing(client: Client) -> None:
    sink = ClickHouseSink(client, flush_interval_ms=10, max_pending_rows=5)
    sink.add_findings([make_finding(n=i) for i in range(5)])
    with pytest.raises(SinkFullError):
        sink.add_usage(make_usage())
    assert sink.rows_pending == 5
    await sink.start()
    await sink.wait_capacity(timeout=10)
    sink.add_usage(make_usage())
    await sink.stop()
    assert sink.rows_written == 6


async def test_sink_never_blocks_the_event_loop(client: Client) -> None:
    class SlowClient:
        def insert(self, table: str | None = None, data: Any = None, **kw: Any) -> Any:
            assert threading.current_thread() is not threading.main_thread()
            time.sleep(0.4)
            return client.insert(table, data, **kw)

    sink = ClickHouseSink(SlowClient(), flush_interval_ms=10)
    await sink.start()
    gaps: list[float] = []
    last = time.monotonic()

    async def ticker() -> None:
        nonlocal last
        for _ in range(60):
            await asyncio.sleep(0.01)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    tick = asyncio.create_task(ticker())
    for i in range(3):
        sink.add_findings([make_finding(n=i)])  # returns at once
        await asyncio.sleep(0.05)
    await tick
    await sink.stop()
    assert max(gaps) < 0.2, max(gaps)
    assert count_findings(client, "a") == 3
