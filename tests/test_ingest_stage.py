"""The ingest agent's compute step, without Kafka: what a batch does to each source's state.

`IngestStage.compute` is the part of the agent that runs per batch between the
table reads and the table writes; it must skip replayed offsets, close windows
by the watermark, and keep one source's failure from touching the others.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest

from loglytics.ingest import IngestStage, SourceWork
from loglytics.ingest.pipeline import Decoded, SourcePipeline
from loglytics.ingest.windows import new_source_state
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

    def send_soon(self, *, key: bytes, value: bytes) -> None:
        self.sent.append(orjson.loads(value))


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
