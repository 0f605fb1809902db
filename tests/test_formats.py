"""Per-format accuracy of the general parser over samples written from each format's documentation.

Each ``tests/data/formats/NAME.log`` has ``NAME.expected.jsonl``: one object per
event with the fields its writer put in (``timestamp`` in Unix seconds or
null, canonical ``level``, ``message``, raw ``lines``). Most samples reach the
general detector (``format == "auto"``), none is tied to a layout written for
it. The README in that folder says how the expected fields are defined;
``python -m loglytics.parsing formats tests/data/formats`` prints the table.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from loglytics.parsing import LineParser, normalise_level
from loglytics.parsing.accuracy import ARRIVAL, measure
from loglytics.parsing.events import EventParser
from loglytics.parsing.loghub import SYSTEMS, load
from loglytics.parsing.model import ParsedEvent

FORMATS_DIR = Path(__file__).parent / "data" / "formats"
NAMES = sorted(p.name.removesuffix(".log") for p in FORMATS_DIR.glob("*.log"))
LEVELLED = {"Apache", "BGL", "HDFS", "Hadoop", "OpenStack", "Spark", "Zookeeper"}


def test_every_sample_has_expectations() -> None:
    assert len(NAMES) >= 27
    for name in NAMES:
        assert (FORMATS_DIR / f"{name}.expected.jsonl").is_file(), name


@pytest.mark.parametrize("name", NAMES)
def test_format_accuracy(name: str) -> None:
    acc = measure(FORMATS_DIR / f"{name}.log")
    assert acc.events == acc.expected
    assert acc.timestamp >= 0.99, acc
    assert acc.level >= 0.95, acc
    assert acc.message >= 0.95, acc


@pytest.mark.parametrize("start", [0, 1000, 1900])
@pytest.mark.parametrize("system", SYSTEMS)
def test_the_general_detector_alone_reads_loghub(loghub_dir: Path, system: str, start: int) -> None:
    """No named layout (``format="auto"``): the learned header alone finds Loghub's messages,
    whichever of a system's lines come first (the header is learned from the first ones)."""
    sample = load(system, loghub_dir)
    lines = sample.lines[start:] + sample.lines[:start]
    truth = sample.truth[start:] + sample.truth[:start]
    parser = EventParser(LineParser(format="auto", default_year=2005))
    events: list[ParsedEvent] = []
    for i in range(0, len(lines), 100):
        events += parser.parse(lines[i : i + 100], ARRIVAL)
    events += parser.flush()
    assert len(events) == len(truth)
    exact = sum(e.message == t["Content"] for e, t in zip(events, truth, strict=True))
    assert exact / len(events) >= 0.99
    assert all(e.timestamp is not None for e in events)
    if system in LEVELLED:
        same = sum(
            e.level == normalise_level(t["Level"]) for e, t in zip(events, truth, strict=True)
        )
        assert same / len(events) >= 0.99
