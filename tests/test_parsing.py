"""Tests for loglytics.parsing: Loghub ground truth, named layouts, fallbacks, robustness."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loglytics.parsing import FORMATS, LineParser, ParsedLine, normalise_level, parse_line
from loglytics.parsing.layouts import RegexLayout
from loglytics.parsing.loghub import SYSTEMS, load

CANONICAL = {"TRACE", "DEBUG", "INFO", "NOTICE", "WARN", "ERROR", "CRITICAL", "FATAL", "UNKNOWN"}
# Systems whose Level column is a real level (Linux's is the host name).
LEVELLED = {"Apache", "BGL", "HDFS", "Hadoop", "OpenStack", "Spark", "Zookeeper"}
EXPECTED_FORMAT = {
    "Apache": "apache_error",
    "BGL": "bgl",
    "HDFS": "hdfs",
    "Hadoop": "log4j",
    "Linux": "syslog",
    "OpenStack": "oslo",
    "Spark": "log4j_short",
    "Zookeeper": "log4j_dash",
}
# First line of each sample: (epoch seconds, component).
FIRST_LINE = {
    "Apache": (1133671664.0, None),  # Sun Dec 04 04:47:44 2005
    "BGL": (1117838570.675872, "KERNEL"),  # epoch column + microseconds of the stamp
    "HDFS": (1226262975.0, "dfs.DataNode$PacketResponder"),  # 081109 203615
    "Hadoop": (1445191307.978, "org.apache.hadoop.mapreduce.v2.app.MRAppMaster"),
    "Linux": (1118762161.0, "sshd(pam_unix)"),  # Jun 14 15:16:01, default_year=2005
    "OpenStack": (1494892800.008, "nova.osapi_compute.wsgi.server"),
    "Spark": (1497039040.0, "executor.CoarseGrainedExecutorBackend"),  # 17/06/09 20:10:40
    "Zookeeper": (1438191704.747, "FastLeaderElection"),
}


# Per Loghub system: (ground-truth rows, parse results, detected format).
Parsed = dict[str, tuple[list[dict[str, str]], list[ParsedLine], str | None]]


@pytest.fixture(scope="module")
def parsed(loghub_dir: Path) -> Parsed:
    out: Parsed = {}
    for system in SYSTEMS:
        sample = load(system, loghub_dir)
        parser = LineParser(default_year=2005)
        out[system] = (sample.truth, parser.parse_many(sample.lines), parser.format)
    return out


@pytest.mark.parametrize("system", SYSTEMS)
def test_loghub_message_matches_content(parsed: Parsed, system: str) -> None:
    truth, results, _ = parsed[system]
    assert len(results) == len(truth) == 2000
    wrong = [
        (r.message, t["Content"])
        for r, t in zip(results, truth, strict=True)
        if r.message != t["Content"]
    ]
    assert 1 - len(wrong) / len(truth) >= 0.99, wrong[:5]


@pytest.mark.parametrize("system", sorted(LEVELLED))
def test_loghub_level_matches(parsed: Parsed, system: str) -> None:
    truth, results, _ = parsed[system]
    wrong = [
        (r.level, t["Level"])
        for r, t in zip(results, truth, strict=True)
        if r.level != normalise_level(t["Level"])
    ]
    assert 1 - len(wrong) / len(truth) >= 0.99, wrong[:5]


@pytest.mark.parametrize("system", SYSTEMS)
def test_loghub_detection_and_timestamps(parsed: Parsed, system: str) -> None:
    _, results, fmt = parsed[system]
    assert fmt == EXPECTED_FORMAT[system]
    assert {r.format for r in results} == {fmt}
    assert all(r.timestamp is not None for r in results)
    assert all(r.level in CANONICAL for r in results)
    ts, component = FIRST_LINE[system]
    assert results[0].timestamp == pytest.approx(ts, abs=1e-6)
    assert results[0].component == component


def test_linux_level_is_canonical_without_level_field(parsed: Parsed) -> None:
    _, results, _ = parsed["Linux"]
    assert {r.level for r in results} <= {"UNKNOWN", "INFO", "ERROR", "WARN", "CRITICAL", "NOTICE"}


# --- named layouts outside Loghub -------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - 'su root' failed",
            ParsedLine(1065910455.003, "CRITICAL", "su", "'su root' failed", "rfc5424"),
        ),
        (
            '<165>1 2003-10-11T22:14:15.003-07:00 host evntslog - ID47 [ex@32473 iut="3"] An event',
            ParsedLine(1065935655.003, "NOTICE", "evntslog", "An event", "rfc5424"),
        ),
        (
            "<13>Jun 14 15:16:01 host proc[12]: hello",
            ParsedLine(1118762161.0, "NOTICE", "proc", "hello", "syslog"),
        ),
        (
            "Jun  4 15:16:01 host syslogd 1.4.1: restart.",
            ParsedLine(1117898161.0, "UNKNOWN", "syslogd 1.4.1", "restart.", "syslog"),
        ),
        (
            "2024-05-01T12:00:00.123Z ERROR disk full",
            ParsedLine(1714564800.123, "ERROR", None, "disk full", "iso"),
        ),
        (
            "2024-05-01T12:00:00.123+02:00 warn disk full",
            ParsedLine(1714557600.123, "WARN", None, "disk full", "iso"),
        ),
        (
            "2024-05-01 12:00:00 [INFO] started",
            ParsedLine(1714564800.0, "INFO", None, "started", "iso"),
        ),
        (
            "2024-05-01 12:00:00,250 something happened",
            ParsedLine(1714564800.25, "UNKNOWN", None, "something happened", "iso"),
        ),
        (
            "2024-05-01 12:00:00,123 - app.db - WARNING - slow query",
            ParsedLine(1714564800.123, "WARN", "app.db", "slow query", "python"),
        ),
        (
            "WARNING:root:disk almost full",
            ParsedLine(None, "WARN", "root", "disk almost full", "python_basic"),
        ),
        (
            "991231 235959 7 WARN a.B: two-digit year pivots to 1999",
            ParsedLine(946684799.0, "WARN", "a.B", "two-digit year pivots to 1999", "hdfs"),
        ),
        (
            "2015-10-18 18:01:47,978 ERROR org.apache.Foo: boom",
            ParsedLine(1445191307.978, "ERROR", "org.apache.Foo", "boom", "log4j"),
        ),
        (
            "[Wed Oct 11 14:32:52.123456 2000] [core:error] [pid 123] AH00124: request exceeded",
            ParsedLine(
                971274772.123456, "ERROR", "core", "AH00124: request exceeded", "apache_error"
            ),
        ),
        (
            "[Sun Dec 04 04:47:44 2005] [error] mod_jk child workerEnv in error state 6",
            ParsedLine(
                1133671664.0,
                "ERROR",
                None,
                "mod_jk child workerEnv in error state 6",
                "apache_error",
            ),
        ),
        (
            '{"timestamp":"2024-05-01T12:00:00Z","level":"warning","logger":"a.b","message":"hi"}',
            ParsedLine(1714564800.0, "WARN", "a.b", "hi", "json"),
        ),
        (
            '{"ts":1714564800123,"level":50,"service":"api","msg":"boom"}',
            ParsedLine(1714564800.123, "ERROR", "api", "boom", "json"),
        ),
        (
            '{"@timestamp":"2024-05-01T12:00:00.5+00:00","severity":"ERROR","component":"x","message":"m"}',
            ParsedLine(1714564800.5, "ERROR", "x", "m", "json"),
        ),
    ],
)
def test_known_layouts(line: str, expected: ParsedLine) -> None:
    got = LineParser(default_year=2005).parse(line)
    assert got.timestamp == pytest.approx(expected.timestamp, abs=1e-6)
    assert (got.level, got.component, got.message, got.format) == (
        expected.level,
        expected.component,
        expected.message,
        expected.format,
    )


@pytest.mark.parametrize("name", [n for n, f in FORMATS.items() if isinstance(f, RegexLayout)])
def test_every_layout_example_is_detected_as_itself(name: str) -> None:
    layout = FORMATS[name]
    assert isinstance(layout, RegexLayout)
    assert parse_line(layout.example).format == name


# --- fallbacks, overrides, re-detection --------------------------------------------------


def test_unmatched_line_is_raw_with_guessed_level() -> None:
    assert parse_line("something FAILED with an Error here") == ParsedLine(
        None, "ERROR", None, "something FAILED with an Error here", "raw"
    )
    assert parse_line("  at java.lang.Thread.run(Thread.java:745)\n").message == (
        "  at java.lang.Thread.run(Thread.java:745)"
    )
    assert parse_line("terrorist information").level == "UNKNOWN"  # whole words only
    assert parse_line("").format == "raw"
    assert parse_line("[1, 2]").format == "raw"  # JSON but not an object


def test_parser_sticks_to_format_and_redetects() -> None:
    parser = LineParser()
    for _ in range(20):
        assert parser.parse("2015-10-18 18:01:47,978 INFO [main] a.B: x").format == "log4j"
    assert parser.format == "log4j"
    trace = parser.parse("\tat a.B.c(B.java:1)")
    assert trace.format == "raw"
    assert parser.format == "log4j"  # a stack-trace line does not make it give up
    assert parser.parse("2015-10-18 18:01:47,978 INFO [main] odd tail").format == "iso"
    assert parser.parse("2015-10-18 18:01:47,978 INFO [main] a.B: x").format == "log4j"
    assert parser.format == "log4j"  # one odd line does not flip it to the generic layout
    for _ in range(3):
        assert parser.parse("17/06/09 20:10:40 WARN x.Y: z").format == "log4j_short"
    assert parser.format == "log4j_short"  # a sustained change of format does


def test_probe_vote_prefers_the_majority_layout() -> None:
    parser = LineParser()
    lines = ["2024-05-01 12:00:00,1 INFO [t] a.B: x"] * 3 + [
        "2024-05-01 12:00:00,1 INFO [t] spaced tail"
    ]
    for line in lines + lines:
        parser.parse(line)
    assert parser.format == "log4j"


def test_forced_format_and_custom_pattern() -> None:
    forced = LineParser(format="hdfs")
    assert forced.parse("2024-05-01T12:00:00Z ERROR x").format == "raw"
    assert forced.parse("081109 203615 148 INFO a.B: m").component == "a.B"

    custom = LineParser(
        pattern=r"(?P<timestamp>\S+ \S+) \| (?P<level>\w+) \| (?P<component>\w+) \| (?P<message>.*)"
    )
    got = custom.parse("2024-05-01 12:00:00.5 | warning | db | slow")
    assert got == ParsedLine(1714564800.5, "WARN", "db", "slow", "custom")
    assert custom.parse("no match").format == "raw"

    with pytest.raises(ValueError):
        LineParser(format="nope")


def test_default_year_applies_to_yearless_stamps() -> None:
    a = LineParser(default_year=2005).parse("Jun 14 15:16:01 combo kernel: x").timestamp
    b = LineParser(default_year=2006).parse("Jun 14 15:16:01 combo kernel: x").timestamp
    assert a == 1118762161.0
    assert b == a + 365 * 86400


@pytest.mark.parametrize(
    ("raw", "canon"),
    [
        ("warning", "WARN"),
        ("WARN", "WARN"),
        (" Error ", "ERROR"),
        ("err", "ERROR"),
        ("SEVERE", "ERROR"),
        ("crit", "CRITICAL"),
        ("emerg", "FATAL"),
        ("notice", "NOTICE"),
        ("FINE", "DEBUG"),
        ("trace3", "TRACE"),
        ("[INFO]", "INFO"),
        ("bogus", "UNKNOWN"),
        ("", "UNKNOWN"),
    ],
)
def test_normalise_level(raw: str, canon: str) -> None:
    assert normalise_level(raw) == canon


# --- robustness and speed -----------------------------------------------------------------

_PREFIXES = [f.example for f in FORMATS.values() if isinstance(f, RegexLayout)] + [
    '{"msg": ',
    "<34>1 ",
]


@settings(max_examples=300, deadline=None)
@given(head=st.sampled_from(["", *_PREFIXES]), tail=st.text(max_size=300))
def test_never_raises(head: str, tail: str) -> None:
    for line in (head + tail, tail + head, head[: len(head) // 2] + tail):
        got = LineParser().parse(line)
        assert isinstance(got, ParsedLine)
        assert got.level in CANONICAL
        assert got.timestamp is None or isinstance(got.timestamp, float)
        assert isinstance(got.message, str)


@pytest.mark.parametrize(
    "line",
    [
        "x" * 1_000_000,
        "2015-10-18 18:01:47,978 INFO [" + "[" * 200_000,
        "2015-07-29 17:41:44,747 - INFO  [" + ":a@1" * 100_000,
        "<34>1 2003-10-11T22:14:15Z h a p m " + "[x " * 100_000,
        "{" + '"a":[' * 100_000,
        "Jun 14 15:16:01 combo " + "a" * 500_000 + "[1]",
        '{"ts": ' + "9" * 4000 + ', "level": ' + "9" * 4000 + "}",
        "\x00\r\x0b\x1b[31m\u2028\ud800 ERROR",
    ],
)
def test_pathological_lines_are_fast_and_safe(line: str) -> None:
    start = time.perf_counter()
    got = LineParser().parse(line)
    assert time.perf_counter() - start < 1.0
    assert isinstance(got, ParsedLine)


def test_throughput_steady_state(loghub_dir: Path) -> None:
    """Loose floor (shared CI cores); ``python -m loglytics.parsing`` reports the real number."""
    lines_by_system = [load(s, loghub_dir).lines for s in SYSTEMS]
    parsers = [LineParser(default_year=2005) for _ in SYSTEMS]
    for parser, lines in zip(parsers, lines_by_system, strict=True):
        parser.parse_many(lines)
    start = time.perf_counter()
    for parser, lines in zip(parsers, lines_by_system, strict=True):
        parser.parse_many(lines)
    rate = sum(map(len, lines_by_system)) / (time.perf_counter() - start)
    assert rate > 50_000
