"""Stamp and level shapes of the general detector, one case each, on small learned sources."""

from __future__ import annotations

import calendar

import pytest

from loglytics.parsing import LineParser

T0 = float(calendar.timegm((2026, 12, 1, 10, 0, 0)))  # 2026-12-01T10:00:00Z


def _learned(lines: list[str], **kwargs: float) -> tuple[LineParser, list[float | None]]:
    parser = LineParser(default_year=2026, **kwargs)  # type: ignore[arg-type]
    return parser, [p.timestamp for p in parser.parse_many(lines)]


@pytest.mark.parametrize(
    ("lines", "first"),
    [
        ([f"1796119200{i:03d} worker-{i} done" for i in range(9)], T0),  # epoch milliseconds
        ([f"20261201T10000{i}Z job {i} done" for i in range(9)], T0),  # compact, with a zone
        ([f"20261201-10:00:0{i}:5|Step|42|steps {i}" for i in range(9)], T0 + 0.5),  # pipes
        ([f"2026-12-01 11:00:0{i} CET [app] run {i}" for i in range(9)], T0),  # a zone name
        ([f"(2026-12-01 10:00:0{i}) step {i}" for i in range(9)], T0),  # parenthesised
        ([f"host-{i} | 2026-12-01T10:00:0{i}.5Z | tick {i}" for i in range(9)], T0 + 0.5),
        ([f"Tue, 01 Dec 2026 10:00:0{i} GMT request {i}" for i in range(9)], T0),  # RFC 1123
    ],
)
def test_stamp_shapes(lines: list[str], first: float) -> None:
    parser, stamps = _learned(lines)
    assert parser.format == "auto"
    assert stamps[0] == pytest.approx(first)
    assert all(s is not None for s in stamps)


def test_a_time_of_day_takes_the_arrival_day_and_says_so() -> None:
    lines = [f"10:00:0{i}.123 [main] INFO  a.B - step {i}" for i in range(9)]
    parser, stamps = _learned(lines, arrival=T0 + 3 * 3600)
    assert parser.dates_assumed
    assert stamps[0] == pytest.approx(T0 + 0.123)
    # Just after midnight, a stamp from late the evening before is yesterday's.
    late = LineParser(arrival=T0 + 14 * 3600 + 60)  # 2026-12-02T00:01Z
    assert late.parse_many(["23:59:58.000 [main] INFO  a.B - x"] * 9)[0].timestamp == (
        pytest.approx(T0 + 14 * 3600 - 2)
    )


def test_a_time_of_day_with_its_date_elsewhere_on_the_line() -> None:
    lines = [f"2026.12.01 web-{i % 3} 10:00:0{i}.25 INFO worker: step {i}" for i in range(9)]
    parser, stamps = _learned(lines, arrival=0.0)
    assert not parser.dates_assumed
    assert stamps[:2] == [pytest.approx(T0 + 0.25), pytest.approx(T0 + 1.25)]


def test_day_and_month_order_is_decided_over_the_source() -> None:
    parser, stamps = _learned([f"0{i + 1}/12/2026 10:00:00 saved {i}" for i in range(9)])
    # A source whose lines are all ambiguous takes '/' as month-first (Jan 12) until a line
    # proves otherwise; then the order flips and that line reads right.
    assert stamps[0] == float(calendar.timegm((2026, 1, 12, 10, 0, 0)))
    proof = parser.parse("13/12/2026 10:00:00 saved 13")
    assert proof.timestamp == float(calendar.timegm((2026, 12, 13, 10, 0, 0)))
    assert parser.parse("02/12/2026 10:00:00 saved").timestamp == float(
        calendar.timegm((2026, 12, 2, 10, 0, 0))
    )
    _, stamps = _learned(["13/12/2026 10:00:00 a"] + ["01/12/2026 10:00:00 b"] * 8)
    assert stamps[1] == T0  # 1 Dec: the first line proved the order day-first


@pytest.mark.parametrize(
    ("lines", "levels"),
    [
        (["<30>2026-12-01 10:00:00 app[12]: started"] * 9, "INFO"),  # syslog PRI
        (["<3>[    2.000001] ata1.00: failed command: READ"] * 9, "ERROR"),  # dmesg -r
        (["2026-12-01 10:00:00 [warning] disk 91%"] * 9, "WARN"),  # bracketed, lower case
        (["2026-12-01 10:00:00 Warn disk 91%"] * 9, "WARN"),
        (["2026-12-01 10:00:00 CRIT: disk full"] * 9, "CRITICAL"),  # abbreviated, colon
        (["time=2026-12-01T10:00:00Z level=3 msg=boom"] * 9, "ERROR"),  # numeric severity
        (["2026-12-01 10:00:00.1 1234 E db.go:12] down"] * 9, "ERROR"),  # a letter
    ],
)
def test_level_shapes(lines: list[str], levels: str) -> None:
    parser = LineParser()
    assert {p.level for p in parser.parse_many(lines)} == {levels}
