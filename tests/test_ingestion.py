"""Decoding, parsing/mining and windowing of raw messages, without Kafka.

Why here and not only end to end: every way a message can be bad must end in a
`Rejected` with a reason or an accepted line with a flag, and the columnar fast
path (`process_batch` + `add_batch`) must count exactly what the line-by-line
definition counts; both are cheap to check exhaustively in-process.
"""

from __future__ import annotations

import math
import time
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mined_lines import add_lines, mined_batch_of, process_lines, reference_add_lines

from loglytics.ingest.pipeline import (
    EARLIEST_PLAUSIBLE_TS,
    Decoded,
    Rejected,
    SourcePipeline,
    decode_message,
)
from loglytics.ingest.state import new_source_state
from loglytics.ingest.windows import (
    MAX_EXEMPLAR_CHARS,
    MAX_EXEMPLARS,
    add_batch,
    closable,
    to_digest,
    window_start,
)
from loglytics.mining import MinedLine
from loglytics.schemas import BatchEvent, LogBatch, LogEvent

NOW = time.time()
T0 = float(int(NOW - 3600) // 60 * 60)


def _log4j(ts: float, msg: str, level: str = "INFO") -> str:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts))
    return f"{stamp},{int(ts * 1000) % 1000:03d} {level} [main] com.x.Api: {msg}"


# ---------------------------------------------------------------- decode_message


def test_log_batch() -> None:
    value = LogBatch(tenant="acme", source="api", format="log4j", lines=["a", "b"]).to_bytes()
    got = decode_message(b"ignored/key", value)
    assert isinstance(got, Decoded)
    assert (got.tenant, got.source, got.format, got.lines, got.events) == (
        "acme",
        "api",
        "log4j",
        ["a", "b"],
        [],
    )


def test_log_batch_with_events_and_leading_whitespace() -> None:
    batch = LogBatch(tenant="acme", source="api", events=[BatchEvent(message="m", level="warn")])
    got = decode_message(None, b"\n  " + batch.to_bytes())
    assert isinstance(got, Decoded)
    assert got.events == [BatchEvent(message="m", level="warn")]


def test_log_event() -> None:
    event = LogEvent(tenant="acme", source="api", message="boom", timestamp=T0, level="error")
    got = decode_message(None, event.to_bytes())
    assert isinstance(got, Decoded)
    assert (got.tenant, got.source, got.lines) == ("acme", "api", [])
    assert got.events == [BatchEvent(message="boom", timestamp=T0, level="error")]


def test_text_with_headers() -> None:
    headers = [("Tenant", b"acme"), ("source", b"auth"), ("format", b"syslog")]
    got = decode_message(None, b"line one\r\nline two\n\n", headers)
    assert isinstance(got, Decoded)
    assert (got.tenant, got.source, got.format) == ("acme", "auth", "syslog")
    assert got.lines == ["line one", "line two"]


def test_text_headers_as_mapping_and_default_source() -> None:
    got = decode_message(None, b"x", {"tenant": b"acme"})
    assert isinstance(got, Decoded) and got.source == "default"


def test_text_content_type_wins_over_json_look() -> None:
    headers = [("tenant", b"acme"), ("content-type", b"text/plain")]
    got = decode_message(None, b'{"looks": "like json"}', headers)
    assert isinstance(got, Decoded) and got.lines == ['{"looks": "like json"}']


def test_key_fallback_for_text_without_headers() -> None:
    got = decode_message(b"acme/web", b"GET / 200")
    assert isinstance(got, Decoded)
    assert (got.tenant, got.source, got.lines) == ("acme", "web", ["GET / 200"])


@pytest.mark.parametrize(
    ("key", "value", "headers", "reason"),
    [
        (b"acme/api", b"", None, "empty"),
        (b"acme/api", None, None, "empty"),
        (b"acme/api", b"{not json", None, "invalid JSON"),
        (b"acme/api", b"[1, 2, 3]", None, "JSON array"),
        (None, orjson.dumps({"tenant": 5, "source": "x", "lines": ["a"]}), None, "tenant"),
        (None, orjson.dumps({"source": "x", "lines": ["a"]}), None, "tenant"),
        (None, orjson.dumps({"tenant": "a", "source": "x", "lines": "abc"}), None, "lines"),
        (None, orjson.dumps({"tenant": "a", "source": "x", "lines": [1]}), None, "lines"),
        (None, orjson.dumps({"tenant": "a", "source": "x", "lines": []}), None, "no lines"),
        (None, orjson.dumps({"tenant": "a", "source": "x", "message": 3}), None, "message"),
        (None, orjson.dumps({"tenant": "a", "source": "x", "lines": ["a"], "x": 1}), None, "x"),
        (None, b"plain text with no tenant anywhere", None, "tenant"),
        (b"no-slash-key", b"plain text", None, "tenant"),
        (None, b"text", [("tenant", b"../../etc")], "invalid tenant"),
        (None, b"text", [("tenant", b"acme"), ("source", b"a/b")], "invalid source"),
        (None, b"text", [("tenant", b"\xff\xfe")], "tenant"),
        (None, b"\n\r\n\n", [("tenant", b"acme")], "no lines"),
    ],
)
def test_rejections_say_why(
    key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]] | None, reason: str
) -> None:
    got = decode_message(key, value, headers)
    assert isinstance(got, Rejected), got
    assert reason in got.reason


def test_schema_version_from_the_future_is_rejected() -> None:
    value = orjson.dumps({"schema_version": 2, "tenant": "a", "source": "b", "lines": ["x"]})
    got = decode_message(None, value)
    assert isinstance(got, Rejected) and "schema_version" in got.reason


# ------------------------------------------------------------- SourcePipeline


def _pipe(**kwargs: Any) -> SourcePipeline:
    return SourcePipeline("acme", "api", **kwargs)


def test_lines_are_parsed_and_mined() -> None:
    lines = [_log4j(T0 + i, f"request {i} served in {i % 7} ms") for i in range(20)]
    mined, flagged = process_lines(_pipe(), Decoded("acme", "api", None, lines), NOW)
    assert flagged == 0 and len(mined) == 20
    assert [m.ts for m in mined] == [T0 + i for i in range(20)]
    assert {m.level for m in mined} == {"INFO"}
    assert len({m.template_id for m in mined}) == 1
    assert "<*>" in mined[-1].template
    assert mined[0].is_new and not mined[-1].is_new
    assert mined[5].params[-1] == "5" or "5" in mined[5].params


def test_long_lines_are_truncated_and_flagged() -> None:
    long = _log4j(T0, "x" * 70_000)
    mined, flagged = process_lines(
        _pipe(max_line_bytes=65_536), Decoded("acme", "api", None, [long, _log4j(T0, "short")]), NOW
    )
    assert flagged == 1
    assert mined[0].flagged and not mined[1].flagged
    assert len(mined[0].message) <= 65_536


@pytest.mark.parametrize(
    ("offset", "flag"),
    [(0.0, False), (-86_400.0, False), (200.0, False), (3600.0, True), (86_400 * 30, True)],
)
def test_future_timestamps_are_accepted_with_a_flag(offset: float, flag: bool) -> None:
    arrival = NOW
    event = BatchEvent(message="m", timestamp=arrival + offset)
    mined, flagged = process_lines(
        _pipe(future_tolerance=300.0), Decoded("acme", "api", None, [], [event]), arrival
    )
    assert mined[0].flagged is flag and flagged == int(flag)
    assert mined[0].ts == (arrival if flag else arrival + offset)


@pytest.mark.parametrize("ts", [0.0, 1.0, EARLIEST_PLAUSIBLE_TS - 1])
def test_implausibly_old_timestamps_are_flagged(ts: float) -> None:
    mined, flagged = process_lines(
        _pipe(), Decoded("acme", "api", None, [], [BatchEvent(message="m", timestamp=ts)]), NOW
    )
    assert flagged == 1 and mined[0].ts == NOW


@pytest.mark.parametrize("ts", [None, math.nan, math.inf, -math.inf])
def test_missing_timestamps_take_the_arrival_time_unflagged(ts: float | None) -> None:
    events = [BatchEvent(message="m", timestamp=ts), BatchEvent(message="n", timestamp=T0)]
    mined, flagged = process_lines(_pipe(), Decoded("acme", "api", None, [], events), NOW)
    assert flagged == 0
    assert [m.ts for m in mined] == [NOW, T0]


def test_undecodable_bytes_are_kept_and_flagged() -> None:
    decoded = decode_message(None, b"good line\nbad \xff\xfe line", [("tenant", b"acme")])
    assert isinstance(decoded, Decoded)
    mined, flagged = process_lines(_pipe(), decoded, NOW)
    assert flagged == 1
    assert [m.flagged for m in mined] == [False, True]
    assert "\ufffd" in mined[1].message


def test_event_levels_are_normalised() -> None:
    events = [BatchEvent(message="a", level="warning"), BatchEvent(message="b", level=None)]
    mined, _ = process_lines(_pipe(), Decoded("acme", "api", None, ["plain line"], events), NOW)
    assert [m.level for m in mined] == ["UNKNOWN", "WARN", "UNKNOWN"]


def test_process_and_process_batch_agree() -> None:
    lines = [_log4j(T0 + i, f"GC pause {i % 9} ms heap={100 + i}") for i in range(50)]
    lines[3] = "x" * 100
    a, b = _pipe(max_line_bytes=90), _pipe(max_line_bytes=90)
    mined, flagged = process_lines(a, Decoded("acme", "api", None, lines), NOW)
    batch = b.process_batch(Decoded("acme", "api", None, lines), NOW)
    assert batch.lines() == mined
    assert len(batch.flagged) == flagged == 1
    assert mined_batch_of(mined).lines() == mined


# --------------------------------------------------------------------- windows


def _line(
    ts: float,
    tid: str = "t1",
    level: str = "INFO",
    params: tuple[str, ...] = (),
    new: bool = False,
    flagged: bool = False,
    message: str = "m",
) -> MinedLine:
    return MinedLine(ts, level, tid, f"tpl {tid}", new, params, message, flagged)


def test_add_lines_counts_into_tumbling_windows() -> None:
    state = new_source_state()
    lines = [_line(T0 + s) for s in (0, 10, 59.999, 60, 61, 130)]
    assert add_lines(state, lines, 60.0, 1000.0) == 0
    wins = state["windows"]
    assert {float(k): w["lines"] for k, w in wins.items()} == {T0: 3, T0 + 60: 2, T0 + 120: 1}
    assert state["max_ts"] == T0 + 130
    assert window_start(T0 + 59.999, 60.0) == T0


def test_templates_levels_exemplars_and_numbers() -> None:
    state = new_source_state()
    lines = [
        _line(T0 + i, "t1", "ERROR" if i % 2 else "INFO", (str(i), "x", "12ms"), new=(i == 3))
        for i in range(6)
    ]
    lines.append(_line(T0 + 7, "t2", params=("-1.5",), message="y" * 1000))
    add_lines(state, lines, 60.0, 10.0)
    (win,) = state["windows"].values()
    assert win["levels"] == {"INFO": 4, "ERROR": 3}
    t1 = win["templates"]["t1"]
    assert t1["count"] == 6 and t1["new"] and t1["level"] == "INFO"
    assert len(t1["exemplars"]) == MAX_EXEMPLARS
    assert t1["numeric"] == {"0": [6, 0.0, 5.0, 15.0], "2": [6, 12.0, 12.0, 72.0]}
    t2 = win["templates"]["t2"]
    assert t2["numeric"] == {"0": [1, -1.5, -1.5, -1.5]}
    assert len(t2["exemplars"][0]) == MAX_EXEMPLAR_CHARS
    digest = to_digest("acme", "api", win, "watermark")
    assert digest.line_count == 7 and digest.templates[0].template_id == "t1"
    assert digest.templates[0].numeric[1].mean == 12.0
    assert digest.new_template_ids == ["t1"]


def test_closable_by_watermark_and_idle() -> None:
    state = new_source_state()
    add_lines(state, [_line(T0 + s) for s in (0, 65, 130)], 60.0, 10.0)
    closed = closable(state, 10.0, idle=False)
    assert [w["start"] for w in closed] == [T0, T0 + 60]  # watermark T0+120 passed both ends
    assert state["closed_until"] == T0 + 120
    assert closable(state, 10.0, idle=False) == []
    rest = closable(state, 10.0, idle=True)
    assert [w["start"] for w in rest] == [T0 + 120] and not state["windows"]


def test_late_lines_after_close_are_counted_once_in_an_open_window() -> None:
    state = new_source_state()
    add_lines(state, [_line(T0 + 5), _line(T0 + 125)], 60.0, 10.0)
    closable(state, 10.0, idle=False)  # closes [T0, T0+60)
    late = add_lines(state, [_line(T0 + 6), _line(T0 + 126)], 60.0, 10.0)
    assert late == 1  # counted at the close (the first window not yet emitted), not lost
    assert {w["start"]: w["lines"] for w in state["windows"].values()} == {
        T0 + 60: 1,
        T0 + 120: 2,
    }


def test_late_lines_after_idle_close_open_a_window_at_the_close() -> None:
    state = new_source_state()
    add_lines(state, [_line(T0 + 5)], 60.0, 10.0)
    closable(state, 10.0, idle=True)
    assert add_lines(state, [_line(T0 + 7)], 60.0, 10.0) == 1
    (win,) = state["windows"].values()
    assert win["start"] == T0 + 60 and win["lines"] == 1


def test_lines_too_late_for_a_missing_window_join_the_oldest_open_one() -> None:
    state = new_source_state()
    assert add_lines(state, [_line(T0 + 300), _line(T0 + 10)], 60.0, 10.0) == 1
    (win,) = state["windows"].values()
    assert win["lines"] == 2 and win["start"] == T0 + 300


PARAM = st.sampled_from(["1", "2.5", "-3", "12ms", "x", "", ".", "-", "1e3", "inf", "nan", "7%"])
LINES = st.lists(
    st.builds(
        _line,
        ts=st.floats(T0 - 200, T0 + 400).map(lambda t: round(t, 3)),
        tid=st.sampled_from(["a", "b", "c"]),
        level=st.sampled_from(["INFO", "WARN", "ERROR"]),
        params=st.lists(PARAM, max_size=6).map(tuple),
        new=st.booleans(),
        flagged=st.booleans(),
        message=st.text(max_size=5),
    ),
    max_size=40,
)


def _normalised(windows: dict[str, Any]) -> dict[str, Any]:
    """Windows with numeric sums rounded (the fast path may add in another grouping)."""
    out: dict[str, Any] = orjson.loads(orjson.dumps(windows))
    for win in out.values():
        for acc in win["templates"].values():
            acc["numeric"] = {
                k: [v[0], v[1], v[2], round(v[3], 6)] for k, v in acc["numeric"].items()
            }
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches=st.lists(LINES, max_size=4), close_between=st.booleans())
def test_add_batch_matches_the_line_by_line_definition(
    batches: list[list[MinedLine]], close_between: bool
) -> None:
    fast, slow = new_source_state(), new_source_state()
    for lines in batches:
        assert add_batch(fast, mined_batch_of(lines), 60.0, 10.0) == reference_add_lines(
            slow, lines, 60.0, 10.0
        )
        assert _normalised(fast["windows"]) == _normalised(slow["windows"])
        assert fast["max_ts"] == slow["max_ts"]
        if close_between:
            assert closable(fast, 10.0, idle=False) == closable(slow, 10.0, idle=False)
    assert sum(w["lines"] for w in fast["windows"].values()) <= sum(len(b) for b in batches)


NARROW_LINES = st.lists(
    st.builds(
        _line,
        ts=st.sampled_from([T0 - 70, T0 - 1, T0, T0 + 0.5, T0 + 30, T0 + 59.999, T0 + 61]),
        tid=st.sampled_from(["a", "b"]),
        params=st.lists(PARAM, max_size=3).map(tuple),
        new=st.booleans(),
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches=st.lists(NARROW_LINES, max_size=5), close_after=st.integers(0, 4))
def test_single_window_batches_match_the_line_by_line_definition(
    batches: list[list[MinedLine]], close_after: int
) -> None:
    """Batches inside one window take a shortcut in `add_batch`; it must decide the same."""
    fast, slow = new_source_state(), new_source_state()
    for i, lines in enumerate(batches):
        assert add_batch(fast, mined_batch_of(lines), 60.0, 10.0) == reference_add_lines(
            slow, lines, 60.0, 10.0
        )
        assert _normalised(fast["windows"]) == _normalised(slow["windows"])
        assert fast["max_ts"] == slow["max_ts"]
        if i == close_after:
            assert closable(fast, 10.0, idle=True) == closable(slow, 10.0, idle=True)


# ------------------------------------------------------------------------ fuzz

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=20,
)
HEADER_NAMES = st.sampled_from(["tenant", "source", "format", "content-type", "Tenant", "x"])
HEADERS = st.none() | st.lists(st.tuples(HEADER_NAMES, st.binary(max_size=12)), max_size=4)
KEYS = st.none() | st.binary(max_size=20) | st.just(b"acme/api")
VALID = {
    "tenant": "acme",
    "source": "api",
    "format": None,
    "lines": [_log4j(T0, "ok 1"), '{"level": "error", "msg": "x"}', "raw"],
    "events": [{"message": "e", "timestamp": T0, "level": "warn"}],
}


@st.composite
def mutated_batches(draw: st.DrawFn) -> bytes:
    obj: dict[str, Any] = orjson.loads(orjson.dumps(VALID))
    for _ in range(draw(st.integers(1, 3))):
        field = draw(st.sampled_from([*VALID, "schema_version", "extra"]))
        action = draw(st.sampled_from(["drop", "replace", "nest"]))
        if action == "drop":
            obj.pop(field, None)
        elif action == "replace":
            obj[field] = draw(JSON)
        elif isinstance(obj.get(field), list) and obj[field]:
            obj[field][0] = draw(JSON | st.text(max_size=200))
    return orjson.dumps(obj)


VALUES = (
    st.binary(max_size=300)
    | JSON.map(orjson.dumps)
    | mutated_batches()
    | st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass"))
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(key=KEYS, value=VALUES, headers=HEADERS)
def test_fuzz_never_raises(key: bytes | None, value: bytes, headers: Any) -> None:
    result = decode_message(key, value, headers)
    assert isinstance(result, Decoded | Rejected)
    if isinstance(result, Rejected):
        assert result.reason.strip()
        return
    assert result.lines or result.events
    pipe = SourcePipeline(result.tenant, result.source, max_line_bytes=64)
    mined, flagged = process_lines(pipe, result, NOW)
    assert len(mined) == len(result.lines) + len(result.events)
    assert 0 <= flagged <= len(mined)
    assert all(math.isfinite(m.ts) for m in mined)
    assert all(len(m.message) <= 64 for m in mined[: len(result.lines)])
    state = new_source_state()
    add_batch(state, pipe.process_batch(result, NOW), 60.0, 10.0)
    assert sum(w["lines"] for w in state["windows"].values()) == len(mined)
