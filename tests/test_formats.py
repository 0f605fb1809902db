"""Per-format accuracy of the general parser over samples written from each format's documentation.

Each ``tests/data/formats/NAME.log`` has ``NAME.expected.jsonl``: one object per
event with the fields its writer put in (``timestamp`` in Unix seconds or
null, canonical ``level``, ``message``, raw ``lines``). No sample is tied to a
named layout: most of them reach the general detector (``format == "auto"``).
The README in that folder says how the expected fields are defined.
"""

from __future__ import annotations

import calendar
import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from loglytics.parsing import LineParser, normalise_level
from loglytics.parsing.events import EventParser
from loglytics.parsing.loghub import SYSTEMS, load
from loglytics.parsing.model import ParsedEvent

FORMATS_DIR = Path(__file__).parent / "data" / "formats"
NAMES = sorted(p.name.removesuffix(".log") for p in FORMATS_DIR.glob("*.log"))
# When the samples "arrived": the day of stamps that carry no date, the year of those
# that carry no year.
ARRIVAL = float(calendar.timegm((2026, 12, 1, 14, 0, 0)))
CHUNK = 7  # lines per message: events also join across message boundaries
LEVELLED = {"Apache", "BGL", "HDFS", "Hadoop", "OpenStack", "Spark", "Zookeeper"}


@dataclass(frozen=True)
class Accuracy:
    events: int
    expected: int
    timestamp: float
    level: float
    message: float
    formats: frozenset[str]


def measure(name: str) -> Accuracy:
    """Parse one sample as a source would arrive and compare every event with its expectation."""
    lines = (FORMATS_DIR / f"{name}.log").read_text(encoding="utf-8").splitlines()
    expected = [
        json.loads(row)
        for row in (FORMATS_DIR / f"{name}.expected.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    parser = EventParser(LineParser(default_year=2026, arrival=ARRIVAL))
    events: list[ParsedEvent] = []
    for i in range(0, len(lines), CHUNK):
        events += parser.parse(lines[i : i + CHUNK], ARRIVAL)
    events += parser.flush()
    pairs = list(zip(events, expected, strict=False))
    n = max(len(expected), 1)

    def same_time(got: float | None, want: float | None) -> bool:
        return got == want if got is None or want is None else abs(got - want) < 1e-3

    return Accuracy(
        events=len(events),
        expected=len(expected),
        timestamp=sum(same_time(e.timestamp, x["timestamp"]) for e, x in pairs) / n,
        level=sum(e.level == x["level"] for e, x in pairs) / n,
        message=sum(e.message == x["message"] and e.lines == x["lines"] for e, x in pairs) / n,
        formats=frozenset(e.format for e in events),
    )


def test_every_sample_has_expectations() -> None:
    assert len(NAMES) >= 27
    for name in NAMES:
        assert (FORMATS_DIR / f"{name}.expected.jsonl").is_file(), name


@pytest.mark.parametrize("name", NAMES)
def test_format_accuracy(name: str) -> None:
    acc = measure(name)
    assert acc.events == acc.expected
    assert acc.timestamp >= 0.99, acc
    assert acc.level >= 0.95, acc
    assert acc.message >= 0.95, acc


@pytest.mark.parametrize("system", SYSTEMS)
def test_the_general_detector_alone_reads_loghub(loghub_dir: Path, system: str) -> None:
    """No named layout (``format="auto"``): the learned header alone finds Loghub's messages."""
    sample = load(system, loghub_dir)
    parser = EventParser(LineParser(format="auto", default_year=2005))
    events: list[ParsedEvent] = []
    for i in range(0, len(sample.lines), 500):
        events += parser.parse(sample.lines[i : i + 500], ARRIVAL)
    events += parser.flush()
    assert len(events) == len(sample.truth)
    exact = sum(e.message == t["Content"] for e, t in zip(events, sample.truth, strict=True))
    assert exact / len(events) >= 0.99
    assert all(e.timestamp is not None for e in events)
    if system in LEVELLED:
        same = sum(
            e.level == normalise_level(t["Level"])
            for e, t in zip(events, sample.truth, strict=True)
        )
        assert same / len(events) >= 0.99
