"""Ingest with the general parser: multi-line events; learned headers, held events in the row."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import orjson
import pytest
from kafka_io import delivered

from loglytics.ingest import IngestStage
from loglytics.ingest import stage as stage_module
from loglytics.ingest.pipeline import Decoded, SourcePipeline
from loglytics.ingest.state import load_source_state
from loglytics.settings import load_settings

T0 = float(int(time.time() - 3600) // 60 * 60)


def _stamp(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts)) + ",000"


def _service_log(start: float) -> list[str]:
    """INFO lines and ERROR records with a trace, of two kinds of failure."""
    lines: list[str] = []
    for i in range(30):
        ts = start + i
        if i % 5 == 4:
            kind, top = [
                ("java.io.IOException", "com.shop.db.Pool.borrow"),
                ("java.lang.IllegalStateException", "com.shop.Coupons.apply"),
            ][i % 2]
            lines += [
                f"{_stamp(ts)} ERROR [http-{i}] com.shop.Api: request {i} failed",
                f"{kind}: reason {i}",
                f"\tat {top}(X.java:{10 + i})",
                f"\tat com.shop.Api.handle(Api.java:{20 + i})",
                f"\t... {i} more",
            ]
        else:
            lines.append(f"{_stamp(ts)} INFO [http-{i}] com.shop.Api: served request {i}")
    return lines


class _Topic:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send_soon(self, *, key: bytes, value: bytes) -> asyncio.Future[None]:
        self.sent.append(orjson.loads(value))
        return delivered()


def _stage(state: dict[bytes, Any], templates: dict[bytes, Any], topic: _Topic) -> IngestStage:
    async def dead_letter(
        stage: str, reason: str, event: Any, original: bytes | None = None
    ) -> None:
        raise AssertionError(f"unexpected dead letter: {stage}: {reason}")

    return IngestStage(
        load_settings(window_seconds=60.0, allowed_lateness_seconds=10.0),
        state_table=state,
        template_table=templates,
        windows_out=topic,
        dead_letter=dead_letter,
    )


def test_a_trace_is_one_event_with_its_text_as_exemplar() -> None:
    pipe = SourcePipeline("acme", "api")
    lines = _service_log(T0)
    batch = pipe.process_batch(Decoded("acme", "api", None, lines), T0 + 60)
    assert len(batch) == 29  # six traces of five lines each: one event apiece; the last
    last = pipe.flush_held(T0 + 61)  # may go on in the next message: it waits
    assert last is not None and len(last) == 1 and last.levels == ["ERROR"]
    templates = set(batch.mined.templates.values())
    failures = {t for t in templates if "failed" in t}
    assert len(failures) == 2, failures
    errors = [m for m, lv in zip(batch.messages, batch.levels, strict=True) if lv == "ERROR"]
    assert all("\tat com.shop.Api.handle" in m for m in errors)  # exemplars show the trace


def test_a_held_trace_survives_a_restart_through_the_state_row() -> None:
    lines = _service_log(T0)
    cut = lines.index(next(x for x in lines if x.startswith("\tat "))) + 1
    pipe = SourcePipeline("acme", "api")
    first = pipe.process_batch(Decoded("acme", "api", None, lines[:cut]), T0 + 60)
    parsing = pipe.parsing_state()
    assert parsing is not None and parsing[""]["held"]["lines"][-1].startswith("\tat ")
    restored = SourcePipeline("acme", "api", parsing=json.loads(json.dumps(parsing)))
    second = restored.process_batch(Decoded("acme", "api", None, lines[cut:]), T0 + 61)
    last = restored.flush_held(T0 + 62)
    assert last is not None
    assert len(first) + len(second) + len(last) == 30


def test_a_named_layout_leaves_nothing_in_the_row_a_learned_header_does() -> None:
    named = SourcePipeline("acme", "api")
    named.process_batch(
        Decoded("acme", "api", None, [f"{_stamp(T0 + i)} INFO [m] a.B: ok {i}" for i in range(20)]),
        T0 + 60,
    )
    assert named.parsing_state() is None
    logcat = [f"12-01 10:00:0{i}.123  1702  2395 I Tag{i}: message {i}" for i in range(9)]
    learned = SourcePipeline("acme", "phone")
    learned.process_batch(Decoded("acme", "phone", None, logcat), T0 + 60)
    parsing = learned.parsing_state()
    assert parsing is not None and parsing[""]["parser"]["layout"] == "auto"
    again = SourcePipeline("acme", "phone", parsing=parsing)
    batch = again.process_batch(Decoded("acme", "phone", None, logcat[:1]), T0 + 61)
    assert batch.messages == ["message 0"]  # the header is known without a new probe


def test_stamps_without_a_date_are_flagged() -> None:
    pipe = SourcePipeline("acme", "app")
    lines = [f"10:00:0{i}.123 [main] INFO  com.example.App - step {i}" for i in range(9)]
    batch = pipe.process_batch(Decoded("acme", "app", None, lines), T0)
    assert batch.flagged == list(range(9))


async def test_the_idle_close_lets_a_held_event_in(monkeypatch: pytest.MonkeyPatch) -> None:
    state: dict[bytes, Any] = {}
    templates: dict[bytes, Any] = {}
    topic = _Topic()
    stage = _stage(state, templates, topic)
    lines = _service_log(T0)
    lines.append(f"{_stamp(T0 + 40)} ERROR [http-1] com.shop.Api: request 40 failed")
    await stage.absorb({"acme/api": [(Decoded("acme", "api", None, lines), 0, 1)]})
    row = load_source_state(state[b"acme/api"])
    assert "held" in row["parsing"][""]  # its trace may still come in the next message

    class Later:
        @staticmethod
        def time() -> float:
            return time.time() + 10

        @staticmethod
        def monotonic() -> float:
            return time.monotonic() + 3600

    monkeypatch.setattr(stage_module, "time", Later)
    await stage.close_idle()
    assert sum(d["line_count"] for d in topic.sent) == 31
    assert "held" not in load_source_state(state[b"acme/api"]).get("parsing", {}).get("", {})
