"""Incident events in ClickHouse (chdb): the latest version wins, the dashboard views agree."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client
from test_incidents import EXC, W, finding, run

from loglytics.incidents.lifecycle import Lifecycle
from loglytics.incidents.state import TenantIncidents
from loglytics.storage.client import open_client
from loglytics.storage.schema import migrate
from loglytics.storage.sink import ClickHouseSink


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    path: Path = tmp_path_factory.mktemp("chdb-incidents")
    db = open_client(f"chdb://{path}?database=i_{uuid.uuid4().hex[:12]}")
    migrate(db)
    try:
        yield db
    finally:
        db.close()


async def test_incident_events_land_once_each_with_their_latest_version(client: Client) -> None:
    lifecycle = Lifecycle(resolve_windows=3)
    state = TenantIncidents()
    events = run(lifecycle, state, [finding(w, "npe", EXC) for w in range(3)])
    db = finding(3, "db", "Connection to orders-db refused", source="orders-api")
    events += run(lifecycle, state, [db.model_copy(update={"severity": "critical"})])
    events += lifecycle.tick(state, db.created_at + 4 * W)  # everything resolves
    events += run(lifecycle, state, [finding(20, "late", "late failure", source="jobs")])
    assert [e.event for e in events] == ["opened", "opened", "resolved", "resolved", "opened"]
    sink = ClickHouseSink(client, flush_interval_ms=20)
    await sink.start()
    try:
        for event in [*events, *events]:  # a replay stores nothing twice
            sink.add_incident(event)
        await sink.flush()
    finally:
        await sink.stop()
    rows = client.query(
        "SELECT incident_id, version, status, resolved_by FROM incidents FINAL "
        "WHERE tenant = 'globex' ORDER BY opened_at"
    ).result_rows
    assert [(r[1], r[2], r[3]) for r in rows] == [
        (2, "resolved", "quiet"),
        (2, "resolved", "quiet"),
        (1, "open", ""),
    ]
    open_now = client.query(
        "SELECT severity, incidents FROM v_open_incidents WHERE tenant = 'globex'"
    ).result_rows
    assert open_now == [("high", 1)]
    times = client.query(
        "SELECT incident_id, detect_s, resolve_s FROM v_incident_times "
        "WHERE tenant = 'globex' ORDER BY opened_at"
    ).result_rows
    first = events[0]
    assert times[0][0] == first.incident_id
    assert times[0][1] == pytest.approx(first.opened_at - first.first_window_start)
    assert times[0][2] == pytest.approx(events[2].resolved_at - first.opened_at)  # type: ignore[operator]
    assert times[2][2] is None  # still open
