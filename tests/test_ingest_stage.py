"""The ingest agent's compute step, without Kafka: what a batch does to each source's state.

`IngestStage.compute` is the part of the agent that runs per batch between the
table reads and the table writes; it must skip replayed offsets, close windows
by the watermark, and keep one source's failure from touching the others. A worker
restarted over table rows in the state's first layout must window on exactly as if
it had written them itself.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
import pytest
from kafka_io import delivered

from loglytics.ingest import IngestStage, SourceWork
from loglytics.ingest import stage as stage_module
from loglytics.ingest.pipeline import Decoded, SourcePipeline
from loglytics.ingest.state import STATE_VERSION, load_source_state, new_source_state
from loglytics.settings import Settings, load_settings

T0 = float(int(time.time() - 3600) // 60 * 60)


def _log4j(ts: float, msg: str) -> str:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts))
    return f"{stamp},000 INFO [main] com.shop.api: {msg}"


def _work(source: str, batches: list[tuple[list[str], int]]) -> SourceWork:
    messages = [(Decoded("acme", source, None, lines), 0, offset) for lines, offset in batches]
    return SourceWork(
        f"acme/{source}", messages, new_source_state(), SourcePipeline("acme", source)
    )


def _lines(start: float, n: int) -> list[str]:
    return [_log4j(start + i, f"served request {i} in {i % 9} ms") for i in range(n)]


def test_a_batch_is_windowed_and_replays_are_skipped() -> None:
    stage = _stage()
    # 90 s of lines: the first minute's window closes once the watermark (newest stamp
    # minus the allowed lateness, 10 s by default) passes its end.
    work = _work("api", [(_lines(T0, 40), 5), (_lines(T0 + 40, 50), 6)])
    stage.compute([work], time.time())
    assert work.error is None and work.absorbed and work.lines == 90
    assert [w["lines"] for w in work.closed] == [60]
    assert work.templates, "the first batch creates templates to write"
    assert work.state["offsets"] == {"0": 6}
    assert sum(w["lines"] for w in work.state["windows"].values()) == 30

    # The same offsets again (a restart before the commit): nothing is counted twice.
    replay = _work("api", [(_lines(T0 + 70, 5), 6)])
    replay.state, replay.pipe = work.state, work.pipe
    stage.compute([replay], time.time())
    assert not replay.absorbed and replay.lines == 0 and not replay.closed
    assert sum(w["lines"] for w in work.state["windows"].values()) == 30


def test_a_failing_source_is_kept_apart(monkeypatch: pytest.MonkeyPatch) -> None:
    stage = _stage()
    broken, fine = _work("broken", [(_lines(T0, 10), 1)]), _work("fine", [(_lines(T0, 10), 1)])

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("bug")

    monkeypatch.setattr(broken.pipe, "process_batch", boom)
    stage.compute([broken, fine], time.time())
    assert isinstance(broken.error, RuntimeError) and not broken.absorbed
    assert fine.error is None and fine.absorbed and fine.lines == 10


class _Topic:
    """Stands in for `windows_topic`: records what the stage queues."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send_soon(self, *, key: bytes, value: bytes) -> asyncio.Future[None]:
        self.sent.append(orjson.loads(value))
        return delivered()


@pytest.fixture
def tables() -> dict[str, Any]:
    """The stage's tables, topic and dead-lettering as in-memory recorders."""
    state: dict[bytes, Any] = {}
    templates: dict[bytes, Any] = {}
    topic = _Topic()
    letters: list[tuple[str, str, bytes | None]] = []

    async def dead_letter(
        stage: str, reason: str, event: Any, original: bytes | None = None
    ) -> None:
        letters.append((stage, reason, original))

    return {
        "state": state,
        "templates": templates,
        "topic": topic,
        "letters": letters,
        "dead_letter": dead_letter,
    }


def _stage(tables: dict[str, Any] | None = None, settings: Settings | None = None) -> IngestStage:
    """A stage over the recorders (or over throwaway ones, for the compute-only tests)."""

    async def drop(stage: str, reason: str, event: Any, original: bytes | None = None) -> None:
        raise AssertionError(f"unexpected dead letter: {stage}: {reason}")

    return IngestStage(
        settings or load_settings(),
        state_table=tables["state"] if tables else {},
        template_table=tables["templates"] if tables else {},
        windows_out=tables["topic"] if tables else _Topic(),
        dead_letter=tables["dead_letter"] if tables else drop,
    )


def _groups(*sources: str) -> dict[str, list[tuple[Decoded, int, int]]]:
    return {
        f"acme/{s}": [(Decoded("acme", s, None, _lines(T0 + 40 * i, 40)), 0, i) for i in range(3)]
        for s in sources
    }


async def test_absorb_writes_rows_and_emits_closed_windows(tables: dict[str, Any]) -> None:
    stage = _stage(tables)
    await stage.absorb(_groups("api"))
    row = tables["state"][b"acme/api"]
    assert row["offsets"] == {"0": 2} and "activity" in row
    assert tables["templates"], "the new template's row is written"
    assert [w["line_count"] for w in tables["topic"].sent] == [60]
    assert stage.lines_in == 120 and not tables["letters"]


async def test_a_source_that_cannot_be_restored_is_dead_lettered(
    tables: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    stage = _stage(tables)
    real = stage.pipeline

    def pipeline(tenant: str, source: str) -> SourcePipeline:
        if source == "broken":
            raise ValueError("corrupt template row")
        return real(tenant, source)

    monkeypatch.setattr(stage, "pipeline", pipeline)
    await stage.absorb(_groups("broken", "api"))
    assert [(s, "corrupt template row" in r) for s, r, _ in tables["letters"]] == [
        ("ingest", True)
    ] * 3
    assert all(original and original.startswith(b"20") for _, _, original in tables["letters"])
    assert b"acme/broken" not in tables["state"] and b"acme/api" in tables["state"]


# ------------------------------------------------- rows in the first layout still load

LEGACY_T0 = 1_767_225_600.0  # the event times of the rows below (2026-01-01T00:00:00Z)
LEGACY_ARRIVAL = LEGACY_T0 + 3600


def _legacy_batch_1() -> list[str]:
    lines = [
        _log4j_at(LEGACY_T0 + 9 * i, "INFO", f"served request {i} in {i % 4 + 1}.5 ms")
        for i in range(8)
    ]
    lines.append(_log4j_at(LEGACY_T0 + 50, "ERROR", "payment 9 failed: card declined"))
    lines.append(_log4j_at(LEGACY_T0 + 65, "WARN", "cache miss for key k12"))
    lines.append(_log4j_at(LEGACY_T0 + 72, "INFO", "served request 8 in 7 ms"))
    return lines


def _legacy_batch_2() -> list[str]:
    lines = [_log4j_at(LEGACY_T0 + 30, "INFO", "served request 99 in 1 ms")]  # late
    lines += [
        _log4j_at(LEGACY_T0 + 80 + 11 * i, "INFO", f"served request {10 + i} in {i}.25 ms")
        for i in range(6)
    ]
    lines.append(_log4j_at(LEGACY_T0 + 100, "WARN", "cache miss for key k7"))
    lines.append(_log4j_at(LEGACY_T0 + 125, "ERROR", "payment 12 failed: card declined"))
    return lines


def _log4j_at(ts: float, level: str, msg: str) -> str:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts))
    return f"{stamp},000 {level} [main] com.shop.api: {msg}"


# What the first layout's code wrote after `_legacy_batch_1()` (offset 7, arrival
# LEGACY_ARRIVAL, 60 s windows, 10 s lateness): the state row and the template rows,
# copied from the changelog's JSON. The template rows' layout did not change.
OLD_STATE_ROW: dict[str, Any] = {
    "offsets": {"0": 7},
    "max_ts": 1767225672.0,
    "last_arrival": 1767229200.0,
    "windows": {
        "1767225660.0": {
            "start": 1767225660.0,
            "end": 1767225720.0,
            "lines": 3,
            "levels": {"INFO": 2, "WARN": 1},
            "templates": {
                "5a45a8f414a97690": {
                    "t": "served request <*> in <*> ms",
                    "n": 2,
                    "lv": "INFO",
                    "new": False,
                    "ex": ["served request 7 in 4.5 ms", "served request 8 in 7 ms"],
                    "num": {"0": [2, 7.0, 8.0, 15.0], "1": [2, 4.5, 7.0, 11.5]},
                },
                "15e4486da81032f9": {
                    "t": "cache miss for key k<*>",
                    "n": 1,
                    "lv": "WARN",
                    "new": True,
                    "ex": ["cache miss for key k12"],
                    "num": {"0": [1, 12.0, 12.0, 12.0]},
                },
            },
            "flagged": 0,
        }
    },
    "closed_until": 1767225660.0,
    "activity": {
        "95ca75bec7a1173b": [1, 1767229200.0, 9],
        "15e4486da81032f9": [1, 1767229200.0, 10],
        "5a45a8f414a97690": [9, 1767229200.0, 11],
    },
}
OLD_TEMPLATE_ROWS: dict[bytes, Any] = {
    b"acme/api#5a45a8f414a97690": {
        "template_id": "5a45a8f414a97690",
        "template": "served request <*> in <*> ms",
        "tokens": ["served", "request", "<*>", "in", "<*>", "ms"],
        "count": 9,
        "first_seen": 1767229200.0,
        "last_seen": 1767229200.0,
        "route": ["6", "served", "request"],
        "serial": 0,
        "seq": 11,
        "merged_into": None,
        "evicted": False,
    },
    b"acme/api#95ca75bec7a1173b": {
        "template_id": "95ca75bec7a1173b",
        "template": "payment <*> failed: card declined",
        "tokens": ["payment", "<*>", "failed:", "card", "declined"],
        "count": 1,
        "first_seen": 1767229200.0,
        "last_seen": 1767229200.0,
        "route": ["5", "payment", "<*>"],
        "serial": 1,
        "seq": 9,
        "merged_into": None,
        "evicted": False,
    },
    b"acme/api#15e4486da81032f9": {
        "template_id": "15e4486da81032f9",
        "template": "cache miss for key k<*>",
        "tokens": ["cache", "miss", "for", "key", "k<*>"],
        "count": 1,
        "first_seen": 1767229200.0,
        "last_seen": 1767229200.0,
        "route": ["5", "cache", "miss"],
        "serial": 2,
        "seq": 10,
        "merged_into": None,
        "evicted": False,
    },
}


class _Clock:
    """Stands in for the stage's `time` module: a wall clock and a monotonic one we move."""

    def __init__(self, now: float) -> None:
        self.now = now
        self.ticks = 0.0

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.ticks


def _roundtrip(rows: dict[bytes, Any]) -> dict[bytes, Any]:
    """The table as a restore from its changelog gives it back: each value through JSON."""
    return {k: orjson.loads(orjson.dumps(v)) for k, v in rows.items()}


async def _continue(
    tables: dict[str, Any], clock: _Clock, monkeypatch: pytest.MonkeyPatch
) -> IngestStage:
    """A restarted worker over `tables`: absorb `_legacy_batch_2()`, then go idle."""
    monkeypatch.setattr(stage_module, "time", clock)
    settings = load_settings(window_seconds=60.0, allowed_lateness_seconds=10.0)
    stage = _stage(tables, settings)
    clock.now = LEGACY_ARRIVAL + 100
    batch = Decoded("acme", "api", None, _legacy_batch_2())
    await stage.absorb({"acme/api": [(batch, 0, 8)]})
    clock.ticks += settings.window_idle_close_seconds + 1
    await stage.close_idle()
    return stage


async def test_a_first_layout_row_continues_windowing_identically(
    tables: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Today's code from scratch: the first batch, then a restart from the changelog.
    clock = _Clock(LEGACY_ARRIVAL)
    monkeypatch.setattr(stage_module, "time", clock)
    settings = load_settings(window_seconds=60.0, allowed_lateness_seconds=10.0)
    first = _stage(tables, settings)
    await first.absorb({"acme/api": [(Decoded("acme", "api", None, _legacy_batch_1()), 0, 7)]})
    assert tables["templates"] == OLD_TEMPLATE_ROWS
    assert tables["state"][b"acme/api"] == load_source_state(OLD_STATE_ROW)
    tables["topic"].sent.clear()
    fresh = dict(
        tables, state=_roundtrip(tables["state"]), templates=_roundtrip(tables["templates"])
    )
    await _continue(fresh, clock, monkeypatch)

    # The same restart from the rows the first layout wrote.
    legacy = dict(
        tables,
        state={b"acme/api": orjson.loads(orjson.dumps(OLD_STATE_ROW))},
        templates=_roundtrip(OLD_TEMPLATE_ROWS),
        topic=_Topic(),
    )
    await _continue(legacy, clock, monkeypatch)

    assert [d["line_count"] for d in legacy["topic"].sent] == [9, 3]
    assert legacy["topic"].sent == fresh["topic"].sent
    assert legacy["state"] == fresh["state"] and legacy["templates"] == fresh["templates"]
    row = legacy["state"][b"acme/api"]
    assert row["version"] == STATE_VERSION and row["offsets"] == {"0": 8}
    assert not legacy["letters"]


def test_first_layout_rows_fill_what_they_left_out() -> None:
    row = {"offsets": {}, "max_ts": 5.0, "last_arrival": 6.0, "windows": {}}
    assert load_source_state(row) == dict(new_source_state(), max_ts=5.0, last_arrival=6.0)
    assert load_source_state(None) == new_source_state()
    current = new_source_state()
    assert load_source_state(current) is current  # the hot path: no copy
    with pytest.raises(ValueError, match="unknown layout"):
        load_source_state({**current, "version": STATE_VERSION + 1})
