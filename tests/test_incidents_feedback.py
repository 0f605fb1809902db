"""Feedback on incidents: ack, resolve by hand, mute and unmute (in process, and in chdb).

The mute test is the acceptance's: after a mute, recurrences of the pattern
notify no one (no incident event, so nothing for Alertmanager or the webhook)
and are stored flagged `muted`; after the unmute they open incidents again.
"""

from __future__ import annotations

import argparse
import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import orjson
import pytest
from clickhouse_connect.driver.client import Client
from kafka_io import delivered
from test_incidents import EXC, LAG, W, finding

from loglytics.commands.incidents import _mute
from loglytics.incidents.lifecycle import Lifecycle
from loglytics.incidents.stage import IncidentStage
from loglytics.incidents.state import dump_state, load_state
from loglytics.schemas import Finding, Incident, IncidentFeedback, Mute, mute_id
from loglytics.schemas.base import LATEST
from loglytics.storage.client import open_client
from loglytics.storage.schema import migrate
from loglytics.storage.sink import ClickHouseSink
from loglytics.topics import FEEDBACK


class Out:
    """Stands in for a topic: what the stage sends there, decoded."""

    def __init__(self, model: type[Incident] | type[Finding]) -> None:
        self.model = model
        self.values: list[Incident | Finding] = []

    async def send(self, *, key: bytes, value: bytes) -> asyncio.Future[None]:
        record = self.model.from_bytes(value)
        assert key == record.tenant.encode()
        self.values.append(record)
        return delivered()


def stage_with_outputs() -> tuple[IncidentStage, Out, Out, dict[bytes, object]]:
    table: dict[bytes, object] = {}
    incidents, findings = Out(Incident), Out(Finding)
    stage = IncidentStage(
        Lifecycle(resolve_windows=3),
        table=table,
        incidents_out=incidents,  # type: ignore[arg-type]
        owns=lambda key: True,
        findings_out=findings,  # type: ignore[arg-type]
    )
    return stage, incidents, findings, table


def feedback(action: str, *, incident_id: str = "", mute: Mute | None = None) -> IncidentFeedback:
    return IncidentFeedback.model_validate(
        {
            "tenant": "globex",
            "action": action,
            "created_at": 1_700_000_500.0,
            "incident_id": incident_id,
            "mute": mute,
            "by": "oncall",
        }
    )


def npe_mute(created_at: float, until: float | None = None) -> Mute:
    return Mute(
        mute_id=mute_id("globex", ["npe"], [], created_at),
        tenant="globex",
        template_ids=["npe"],
        reason="expected",
        created_at=created_at,
        until=until,
    )


async def test_ack_and_resolve_by_hand_are_events_once_each() -> None:
    stage, incidents, _, _ = stage_with_outputs()
    (opened,) = await stage.absorb([finding(0, "npe", EXC)])
    (acked,) = await stage.apply_feedback([feedback("ack", incident_id=opened.incident_id)])
    assert (acked.event, acked.version, acked.acknowledged) == ("updated", 2, True)
    assert await stage.apply_feedback([feedback("ack", incident_id=opened.incident_id)]) == []
    (resolved,) = await stage.apply_feedback([feedback("resolve", incident_id=opened.incident_id)])
    assert (resolved.status, resolved.resolved_by, resolved.version) == ("resolved", "user", 3)
    assert resolved.acknowledged
    assert await stage.apply_feedback([feedback("resolve", incident_id=opened.incident_id)]) == []
    assert incidents.values == [opened, acked, resolved]


async def test_a_muted_pattern_notifies_no_one_is_stored_muted_and_returns_after_unmute() -> None:
    stage, incidents, findings, table = stage_with_outputs()
    first = finding(0, "npe", EXC)
    (opened,) = await stage.absorb([first])
    await stage.apply_feedback([feedback("resolve", incident_id=opened.incident_id)])
    mute = npe_mute(created_at=first.created_at)
    assert await stage.apply_feedback([feedback("mute", mute=mute)]) == []
    sent_before = len(incidents.values)
    # Recurrences while muted: no incident event (nothing to deliver), each flagged once.
    recurrences = [finding(w, "npe", EXC) for w in (5, 6, 7)]
    assert await stage.absorb(recurrences) == []
    assert len(incidents.values) == sent_before
    flagged = [f for f in findings.values if isinstance(f, Finding)]
    assert len(flagged) == len(findings.values)
    assert [(f.finding_id, f.muted) for f in flagged] == [(f.finding_id, True) for f in recurrences]
    # The stage's own flagged copies come back on `findings`: ignored, not flagged again.
    assert await stage.absorb([f for f in findings.values if isinstance(f, Finding)]) == []
    # A model's verdict on a muted finding (same id) is flagged again, still opens nothing.
    verdict = recurrences[0].model_copy(update={"model_used": "llamacpp", "severity": "critical"})
    assert await stage.absorb([verdict]) == []
    assert len(findings.values) == 4 and all(
        isinstance(f, Finding) and f.muted for f in findings.values
    )
    # The mute survives the state row's codec (a restart).
    assert load_state(table[b"globex#incidents"]).mutes == {mute.mute_id: mute}
    # Unmuted, the pattern opens an incident again, naming the one before it.
    unmute = mute.model_copy(update={"active": False})
    assert await stage.apply_feedback([feedback("unmute", mute=unmute)]) == []
    (again,) = await stage.absorb([finding(9, "npe", EXC)])
    assert (again.event, again.previous_incident_id) == ("opened", opened.incident_id)
    assert len(findings.values) == 4


async def test_a_mute_for_a_duration_ends_by_itself() -> None:
    stage, _, findings, table = stage_with_outputs()
    start = finding(0, "npe", EXC).created_at
    await stage.apply_feedback([feedback("mute", mute=npe_mute(start, until=start + 2 * W))])
    assert await stage.absorb([finding(1, "npe", EXC)]) == []  # detected within the mute
    (opened,) = await stage.absorb([finding(3, "npe", EXC)])  # detected after it ended
    assert opened.event == "opened" and len(findings.values) == 1
    await stage.tick(start + 3 * W + LAG)
    assert load_state(table[b"globex#incidents"]).mutes == {}
    assert dump_state(load_state(table[b"globex#incidents"]))


async def test_a_row_with_a_mute_from_before_the_time_bounds_still_loads() -> None:
    """A mute stored before times were bounded (`until` 10**16 s away) keeps muting, until
    the last storable time, and the rest of the row (the open incident) loads with it."""
    stage, _, _, table = stage_with_outputs()
    (opened,) = await stage.absorb([finding(0, "npe", EXC)])
    row = orjson.loads(dump_state(load_state(table[b"globex#incidents"])))
    legacy = npe_mute(created_at=opened.opened_at).model_dump(mode="json")
    legacy["until"] = 2.5e16
    row["mutes"] = {legacy["mute_id"]: legacy}
    state = load_state(orjson.dumps(row))
    assert [inc.incident.incident_id for inc in state.open.values()] == [opened.incident_id]
    (mute,) = state.mutes.values()
    assert mute.until == LATEST.timestamp() and mute.active


def test_feedback_keys_compact_per_incident_action_and_per_mute_on_the_tenants_partition() -> None:
    assert FEEDBACK.compacted
    mute = npe_mute(1.0)
    assert feedback("ack", incident_id="i1").key == b"globex#incident#i1#ack"
    assert feedback("mute", mute=mute).key == feedback("unmute", mute=mute).key
    assert feedback("mute", mute=mute).key.split(b"#")[0] == b"globex"
    assert IncidentFeedback.from_bytes(feedback("mute", mute=mute).to_bytes()).mute == mute


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    path: Path = tmp_path_factory.mktemp("chdb-feedback")
    db = open_client(f"chdb://{path}?database=f_{uuid.uuid4().hex[:12]}")
    migrate(db)
    try:
        yield db
    finally:
        db.close()


async def test_muted_findings_and_feedback_are_mirrored_to_clickhouse(client: Client) -> None:
    stage, _, findings, _ = stage_with_outputs()
    mute = npe_mute(finding(0, "npe", EXC).created_at)
    records = [
        feedback("mute", mute=mute),
        feedback("unmute", mute=mute.model_copy(update={"active": False})),
    ]
    await stage.apply_feedback(records[:1])
    original = finding(1, "npe", EXC)
    await stage.absorb([original])
    sink = ClickHouseSink(client, flush_interval_ms=20)
    await sink.start()
    try:
        # The finding as detection sent it, then the stage's flagged copy (the store's latest).
        sink.add_findings([original])
        await sink.flush()
        sink.add_findings([f for f in findings.values if isinstance(f, Finding)])
        for record in [*records, *records]:  # a replay stores nothing twice
            sink.add_feedback(record)
        await sink.flush()
    finally:
        await sink.stop()
    rows = client.query(
        "SELECT finding_id, muted FROM findings FINAL WHERE tenant = 'globex'"
    ).result_rows
    assert rows == [(original.finding_id, True)]
    mirrored = client.query(
        "SELECT action, mute_id, reason, active FROM incident_feedback FINAL "
        "WHERE tenant = 'globex' ORDER BY created_at, action"
    ).result_rows
    assert sorted(tuple(row) for row in mirrored) == [
        ("mute", mute.mute_id, "expected", True),
        ("unmute", mute.mute_id, "expected", False),
    ]


@pytest.mark.parametrize(("duration", "ends"), [("2h", 7200.0), ("3660d", 3660 * 86400.0)])
async def test_the_cli_mutes_for_up_to_ten_years(duration: str, ends: float) -> None:
    made = await _mute(cast(Any, None), mute_args(duration), now=1_800_000_000.0)
    assert isinstance(made, Mute) and made.until == 1_800_000_000.0 + ends


@pytest.mark.parametrize("duration", ["3661d", "0s"])
async def test_the_cli_refuses_a_mute_duration_out_of_range(duration: str) -> None:
    refused = await _mute(cast(Any, None), mute_args(duration), now=1_800_000_000.0)
    assert refused == "--for must be more than 0 and at most 3660 days"


def mute_args(duration: str) -> argparse.Namespace:
    return argparse.Namespace(
        template=["npe"], source=[], incident=None, reason="expected", duration=duration, tenant="t"
    )
