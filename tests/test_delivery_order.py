"""Each stage's outputs are delivered before the state that says they were made.

A stage that writes "window closed" (ingest), "window absorbed" (detection) or
"incident event sent" (incidents) to its changelog while the output itself is
still in the producer can be killed between the two deliveries: the next owner
restores the state, skips the replayed input, and the output is gone. With the
outputs delivered first, a kill replays the input and re-sends the same output
(same ids), which every consumer downstream takes once. Each test holds the
deliveries back, releases them once the stage has handed its outputs over, and
checks that no state row was written while any of them was pending.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import Any, TypeVar

from kafka_io import ChangelogTable, HeldDeliveries
from test_detection_state import LEGACY_BASELINE, _Runtime, stored, window
from test_incidents import EXC, W, finding
from test_ingest_stage import T0, _lines

from loglytics.detection.baseline import restore_baseline
from loglytics.detection.stage import DetectionStage
from loglytics.incidents.lifecycle import Lifecycle
from loglytics.incidents.stage import IncidentStage
from loglytics.ingest import IngestStage
from loglytics.ingest.pipeline import Decoded
from loglytics.partitioning import state_key
from loglytics.settings import Settings, load_settings

T = TypeVar("T")


async def _no_dead_letters(
    stage: str, reason: str, event: Any, original: bytes | None = None
) -> None:
    raise AssertionError(f"unexpected dead letter: {stage}: {reason}")


async def held_then_released(out: HeldDeliveries, step: Awaitable[T], sends: int) -> T:
    """Run `step` until it has handed over `sends` outputs, then deliver them."""
    task = asyncio.ensure_future(step)
    await out.wait_sent(sends)
    await asyncio.sleep(0.01)  # room for a write that does not wait for the deliveries
    out.release()
    return await task


def _ingest(out: HeldDeliveries, settings: Settings | None = None) -> IngestStage:
    return IngestStage(
        settings or load_settings(),
        state_table=ChangelogTable(out),
        template_table=ChangelogTable(out),
        windows_out=out,
        dead_letter=_no_dead_letters,
    )


async def test_ingest_writes_its_state_after_the_closed_windows_are_delivered() -> None:
    out = HeldDeliveries()
    stage = _ingest(out)
    messages = [(Decoded("acme", "api", None, _lines(T0 + 40 * i, 40)), 0, i) for i in range(3)]
    await held_then_released(out, stage.absorb({"acme/api": messages}), sends=1)
    for table in (stage.state_table, stage.template_table):
        assert isinstance(table, ChangelogTable) and table and not table.early_writes
    assert stage.state_table[b"acme/api"]["offsets"] == {"0": 2}


async def test_ingest_idle_close_writes_its_state_after_the_digests_are_delivered() -> None:
    out = HeldDeliveries()
    stage = _ingest(out, load_settings(window_idle_close_seconds=1))
    await stage.absorb({"acme/api": [(Decoded("acme", "api", None, _lines(T0, 20)), 0, 0)]})
    assert not out.sent, "one window open, none closed yet"
    stage.last_arrival["acme/api"] = time.monotonic() - 5  # gone quiet
    await held_then_released(out, stage.close_idle(), sends=1)
    table = stage.state_table
    assert isinstance(table, ChangelogTable) and not table.early_writes
    assert not table[b"acme/api"]["windows"]


async def test_detection_writes_its_baseline_after_the_findings_are_delivered() -> None:
    out = HeldDeliveries()
    key = state_key("t", "s", "baseline").encode()
    baselines = ChangelogTable(out, {key: stored(LEGACY_BASELINE)})  # windows 0-8 absorbed
    stage = DetectionStage(
        _Runtime(),  # type: ignore[arg-type]
        baselines=baselines,
        verdicts={},
        findings_out=out,  # type: ignore[arg-type]
    )
    (sent,) = await held_then_released(
        out, stage.detect_source([window(9, latency=2400.0)]), sends=1
    )
    assert not baselines.early_writes, "window 9 marked absorbed while its finding was in flight"
    assert sent.window_start == restore_baseline(baselines[key])["last_window"]


async def test_incidents_write_their_state_after_the_events_are_delivered() -> None:
    out = HeldDeliveries()
    table = ChangelogTable(out)
    stage = IncidentStage(
        Lifecycle(),
        table=table,
        incidents_out=out,  # type: ignore[arg-type]
        owns=lambda key: True,
    )
    (opened,) = await held_then_released(out, stage.absorb([finding(0, "npe", EXC)]), sends=1)
    assert not table.early_writes, "incident state written while its `opened` event was in flight"
    assert opened.event == "opened" and set(table) == {b"globex#incidents"}


async def test_the_alert_re_post_never_sees_a_resolved_incident_as_open() -> None:
    """While a `resolved` event is on its way, the stage's old row still says open; the
    Alertmanager re-post reads the new state instead, or it would post the alert as
    active after the delivery agent posted it resolved, and revive it."""
    out = HeldDeliveries()
    stage = IncidentStage(
        Lifecycle(),
        table={},
        incidents_out=out,  # type: ignore[arg-type]
        owns=lambda key: True,
    )
    first = finding(0, "npe", EXC)
    opened = asyncio.ensure_future(stage.absorb([first]))
    await out.wait_sent(1)
    out.release()
    await opened
    assert [i.status for i in stage.open_incidents()] == ["open"]
    tick = asyncio.ensure_future(stage.tick(first.created_at + 100 * W))
    await out.wait_sent(2)
    assert stage.open_incidents() == [], "re-post would revive the alert being resolved"
    out.release()
    (resolved,) = await tick
    assert resolved.status == "resolved" and stage.open_incidents() == []
