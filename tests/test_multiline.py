"""Multi-line events: joined per source, across messages and restarts, bounded; trace identity."""

from __future__ import annotations

import json
import random

import pytest

from loglytics.mining import TemplateMiner
from loglytics.parsing import LineParser
from loglytics.parsing.events import EventParser, as_columns
from loglytics.parsing.header import HeaderSpec
from loglytics.parsing.model import ParsedEvent
from loglytics.parsing.multiline import JoinConfig, trace_identity

T0 = 1_796_119_200.0  # 2026-12-01T10:00:00Z
ARRIVAL = T0 + 3600

# (exception type, frames, where it comes from): three kinds of failure, each thrown from
# its own top frame, with a varying tail of deeper frames.
FAILURES = (
    ("java.lang.IllegalStateException", "com.shop.checkout.Coupons.apply", "coupon {n} expired"),
    ("java.io.IOException", "com.shop.db.Pool.borrow", "connection reset by peer"),
    ("java.lang.NullPointerException", "com.shop.cart.Cart.total", ""),
)
DEEPER = (
    "com.shop.api.OrderController.place(OrderController.java:{n})",
    "org.springframework.web.servlet.FrameworkServlet.service(FrameworkServlet.java:{n})",
    "jakarta.servlet.http.HttpServlet.service(HttpServlet.java:{n})",
    "org.apache.catalina.core.ApplicationFilterChain.doFilter(ApplicationFilterChain.java:{n})",
    "java.base/java.lang.Thread.run(Thread.java:{n})",
)


def _stamp(ts: float) -> str:
    import time

    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts)) + f",{int(ts * 1000) % 1000:03d}"


def java_service_log(records: int, seed: int = 5) -> tuple[list[str], list[tuple[int, str | None]]]:
    """A log4j service log with interleaved stack traces; also (lines per record, failure kind)."""
    rng = random.Random(seed)
    lines: list[str] = []
    shape: list[tuple[int, str | None]] = []
    for i in range(records):
        ts = T0 + i * 0.37
        roll = rng.random()
        if roll < 0.6:
            lines.append(
                f"{_stamp(ts)} INFO [http-{rng.randint(1, 8)}] com.shop.api.OrderController: "
                f"Placed order {rng.randint(10000, 99999)} in {rng.randint(3, 400)} ms"
            )
            shape.append((1, None))
            continue
        kind, top, text = FAILURES[rng.randrange(len(FAILURES))]
        record = [
            f"{_stamp(ts)} ERROR [http-{rng.randint(1, 8)}] com.shop.api.OrderController: "
            f"Failed to place order {rng.randint(10000, 99999)}",
            f"{kind}: {text.format(n=rng.randint(1, 999))}".rstrip(": "),
            f"\tat {top}({top.split('.')[-2]}.java:{rng.randint(10, 300)})",
        ]
        record += [
            f"\tat {f.format(n=rng.randint(10, 2000))}"
            for f in rng.sample(DEEPER, rng.randint(1, 5))
        ]
        if rng.random() < 0.5:
            record += [
                "Caused by: java.net.SocketTimeoutException: Read timed out",
                "\tat java.base/sun.nio.ch.NioSocketImpl.timedRead(NioSocketImpl.java:"
                f"{rng.randint(100, 400)})",
                f"\t... {rng.randint(3, 40)} more",
            ]
        lines += record
        shape.append((len(record), f"{kind} at {top}"))
    return lines, shape


def _parse_in_messages(
    lines: list[str], seed: int, parser: EventParser | None = None
) -> list[ParsedEvent]:
    """Parse as a source whose messages are cut anywhere (inside traces too)."""
    rng = random.Random(seed)
    events = parser if parser is not None else EventParser(LineParser())
    out: list[ParsedEvent] = []
    i = 0
    while i < len(lines):
        n = rng.randint(1, 40)
        out += events.parse(lines[i : i + n], ARRIVAL)
        i += n
    return out + events.flush()


def test_java_log_one_event_per_record_and_one_template_per_failure() -> None:
    # A source's very first trace may still split when a message ends right after its
    # header line (it does not wait before the source has shown it writes traces);
    # these message cuts do not fall there.
    lines, shape = java_service_log(400)
    events = _parse_in_messages(lines, seed=1)
    assert [e.lines for e in events] == [n for n, _ in shape]
    assert {e.format for e in events} == {"log4j"}
    assert [e.level for e in events] == ["INFO" if k is None else "ERROR" for _, k in shape]
    miner = TemplateMiner()
    hits = miner.add_many([e.mined_message for e in events], ARRIVAL)
    failures = {h.template for h, (_, kind) in zip(hits, shape, strict=True) if kind is not None}
    assert len(failures) == len(FAILURES), failures
    for kind, top, _ in FAILURES:
        assert sum(f"{kind} at {top}" in t for t in failures) == 1
    frames = {line for line in lines if line.startswith("\tat ")}
    assert len(frames) > 10 * len(failures)  # what one event per line would have mined
    texts = [e.text for e in events if e.lines > 1]
    assert all(t is not None and "\tat " in t for t in texts)  # the trace is kept for exemplars


def test_a_trace_split_over_two_messages_joins_across_a_restart() -> None:
    lines, shape = java_service_log(30, seed=9)
    cut = next(i for i, line in enumerate(lines) if line.startswith("\tat ")) + 1
    first = EventParser(LineParser())
    events = first.parse(lines[:cut], ARRIVAL)
    assert first.held
    state = json.loads(json.dumps(first.state()))  # what the state row stores
    second = EventParser.from_state(state)
    events += second.parse(lines[cut:], ARRIVAL + 0.5) + second.flush()
    assert [e.lines for e in events] == [n for n, _ in shape]


@pytest.mark.parametrize(
    ("text", "identity", "level", "lines"),
    [
        (
            "2026-12-01 10:00:00,123 ERROR app.worker: job failed\n"
            "Traceback (most recent call last):\n"
            '  File "/srv/app/worker.py", line 12, in run\n'
            "    process(item)\n"
            '  File "/srv/app/handlers.py", line 40, in process\n'
            '    raise ValueError("bad item")\n'
            "ValueError: bad item",
            "job failed | ValueError at handlers.py:process",
            "ERROR",
            7,
        ),
        (
            "2026/12/01 10:00:00 handling request\n"
            "panic: runtime error: index out of range [3] with length 3\n"
            "\n"
            "goroutine 1 [running]:\n"
            "main.handler(0xc000012345)\n"
            "\t/app/main.go:12 +0x1d\n"
            "main.main()\n"
            "\t/app/main.go:20 +0x25\n"
            "exit status 2",
            "panic: runtime error: index out of range [3] with length 3 | panic at main.handler",
            "FATAL",
            8,
        ),
        (
            "Dec 01, 2026 10:00:01 AM com.example.App run\n"
            "SEVERE: request failed\n"
            "java.lang.RuntimeException: boom\n"
            "\tat com.example.App.run(App.java:33)",
            "request failed | java.lang.RuntimeException at com.example.App.run",
            "ERROR",
            4,
        ),
    ],
)
def test_traces_join_with_their_identity(text: str, identity: str, level: str, lines: int) -> None:
    parser = EventParser(LineParser())
    got = parser.parse(text.split("\n"), ARRIVAL) + parser.flush()
    assert got[-1].mined_message == identity
    assert got[-1].level == level
    assert got[-1].lines == lines


def test_pretty_printed_json_is_one_event() -> None:
    lines = [
        '{"level":"info","msg":"one","ts":"2026-12-01T10:00:00Z"}',
        "{",
        '  "level": "error",',
        '  "msg": "two",',
        '  "ctx": {"order": 42, "items": [1, 2]},',
        '  "ts": "2026-12-01T10:00:01Z"',
        "}",
        '{"level":"info","msg":"three","ts":"2026-12-01T10:00:02Z"}',
    ]
    parser = EventParser(LineParser())
    events = parser.parse(lines[:3], ARRIVAL) + parser.parse(lines[3:], ARRIVAL) + parser.flush()
    assert [(e.message, e.level, e.lines) for e in events] == [
        ("one", "INFO", 1),
        ("two", "ERROR", 6),
        ("three", "INFO", 1),
    ]
    assert events[1].timestamp == T0 + 1


def test_a_source_without_traces_never_holds_a_line() -> None:
    parser = EventParser(LineParser())
    lines = [f"2026-12-01 10:00:0{i},000 ERROR [main] a.B: failed {i}" for i in range(3)]
    assert [e.message for e in parser.parse(lines, ARRIVAL)] == [f"failed {i}" for i in range(3)]
    assert not parser.held


def test_events_are_bounded_in_lines_and_bytes() -> None:
    head = "2026-12-01 10:00:00,000 ERROR [main] a.B: failed"
    trace = [f"\tat a.B.c{i}(B.java:{i})" for i in range(50)]
    parser = EventParser(LineParser(), JoinConfig(max_lines=20))
    events = parser.parse([head, *trace], ARRIVAL) + parser.flush()
    assert [e.lines for e in events] == [20, 20, 11]
    wide = EventParser(LineParser(), JoinConfig(max_bytes=200))
    events = wide.parse([head, *trace], ARRIVAL) + wide.flush()
    assert all(sum(len(x) for x in (e.text or "").split("\n")) <= 260 for e in events)
    assert sum(e.lines for e in events) == 51


def test_a_held_event_is_flushed_after_its_timeout() -> None:
    parser = EventParser(LineParser(), JoinConfig(flush_after=2.0))
    head = "2026-12-01 10:00:00,000 ERROR [main] a.B: failed"
    first = parser.parse([head, "\tat a.B.c(B.java:1)"], ARRIVAL)
    assert first == [] and parser.held  # a trace in progress waits
    assert parser.flush(ARRIVAL + 1.0) == []  # not yet due
    assert [e.lines for e in parser.flush(ARRIVAL + 2.5)] == [2]
    # The source writes traces: an ERROR line, last of its message, may be followed by one.
    assert parser.parse([head], ARRIVAL) == []
    later = parser.parse(["2026-12-01 10:00:09,000 INFO [main] a.B: fine"], ARRIVAL + 9)
    assert [e.message for e in later] == ["failed", "fine"]


def test_columns_equal_events_and_single_lines_cost_no_join() -> None:
    lines, _ = java_service_log(200, seed=3)
    a, b = EventParser(LineParser()), EventParser(LineParser())
    a.parse(lines[:40], ARRIVAL), b.parse(lines[:40], ARRIVAL)
    rng = random.Random(4)
    i = 40
    while i < len(lines):
        n = rng.randint(1, 60)
        chunk = lines[i : i + n]
        columns = a.parse_columns(chunk, ARRIVAL)
        expected = as_columns(b.parse(chunk, ARRIVAL))
        assert columns.timestamps == expected.timestamps
        assert columns.levels == expected.levels
        assert columns.messages == expected.messages
        assert (columns.lines or [1] * len(columns.messages)) == (
            expected.lines or [1] * len(expected.messages)
        )
        i += n


def test_trace_identity_of_plain_text_is_none() -> None:
    assert trace_identity(["just a line", "  and an indented one"]) is None


def test_learned_header_and_parser_state_round_trip() -> None:
    lines = [
        f"12-01 10:00:0{i}.123  1702  2395 {'DIWE'[i % 4]} Tag{i}: message number {i}"
        for i in range(9)
    ]
    parser = LineParser(default_year=2026)
    first = parser.parse_many(lines)
    assert parser.format == "auto"
    state = json.loads(json.dumps(parser.state()))
    spec = HeaderSpec.from_dict(state["header"])
    assert HeaderSpec.from_dict(spec.to_dict()) == spec
    restored = LineParser.from_state(state, default_year=2026)
    assert restored.format == "auto"
    assert restored.parse_many(lines) == parser.parse_many(lines) == first
    assert LineParser.from_state({"v": 99, "layout": "nope"}).format is None  # unreadable: afresh
