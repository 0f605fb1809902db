"""Per-format accuracy of the parser against samples with expected fields (``NAME.log`` +
``NAME.expected.jsonl``, as in ``tests/data/formats``).

Shared by the accuracy test and ``python -m loglytics.parsing formats DIR``, which
prints the table the README quotes. A sample is parsed as one source would arrive:
in messages of a few lines (events also join across message boundaries), with a
fixed arrival time and default year so that the expectations do not depend on
today's date.
"""

from __future__ import annotations

import calendar
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from loglytics.parsing.events import EventParser
from loglytics.parsing.model import ParsedEvent
from loglytics.parsing.parser import LineParser

ARRIVAL: Final = float(calendar.timegm((2026, 12, 1, 14, 0, 0)))
"""When the samples "arrive": the day of stamps without a date, the year of those without one."""
YEAR: Final = 2026
CHUNK: Final = 7
"""Lines per message."""
STAMP_TOLERANCE: Final = 1e-3


@dataclass(frozen=True)
class Accuracy:
    """Shares of a sample's expected events the parser got right, field by field."""

    events: int
    expected: int
    timestamp: float
    level: float
    message: float
    """Message and raw line count both exact."""
    formats: frozenset[str]


def parse_sample(lines: list[str]) -> list[ParsedEvent]:
    """The events of a sample's lines, parsed as one source's messages."""
    parser = EventParser(LineParser(default_year=YEAR, arrival=ARRIVAL))
    events: list[ParsedEvent] = []
    for i in range(0, len(lines), CHUNK):
        events += parser.parse(lines[i : i + CHUNK], ARRIVAL)
    return events + parser.flush()


def _same_time(got: float | None, want: float | None) -> bool:
    if got is None or want is None:
        return got == want
    return abs(got - want) < STAMP_TOLERANCE


def measure(log: Path) -> Accuracy:
    """Parse ``log`` and compare every event with ``<name>.expected.jsonl`` beside it."""
    lines = log.read_text(encoding="utf-8").splitlines()
    expected_file = log.with_name(log.name.removesuffix(".log") + ".expected.jsonl")
    expected = [json.loads(row) for row in expected_file.read_text(encoding="utf-8").splitlines()]
    events = parse_sample(lines)
    pairs = list(zip(events, expected, strict=False))
    n = max(len(expected), 1)
    return Accuracy(
        events=len(events),
        expected=len(expected),
        timestamp=sum(_same_time(e.timestamp, x["timestamp"]) for e, x in pairs) / n,
        level=sum(e.level == x["level"] for e, x in pairs) / n,
        message=sum(e.message == x["message"] and e.lines == x["lines"] for e, x in pairs) / n,
        formats=frozenset(e.format for e in events),
    )


def table(folder: Path) -> list[str]:
    """One Markdown row per sample in ``folder``, then the means."""
    rows = [
        "| sample | events | timestamp | level | message | parsed as |",
        "|---|---|---|---|---|---|",
    ]
    results = [
        (log.name.removesuffix(".log"), measure(log)) for log in sorted(folder.glob("*.log"))
    ]
    for name, acc in results:
        rows.append(
            f"| `{name}` | {acc.events}/{acc.expected} | {acc.timestamp:.2f} | {acc.level:.2f} "
            f"| {acc.message:.2f} | {', '.join(sorted(acc.formats))} |"
        )
    if results:
        k = len(results)
        mean = [
            sum(getattr(a, f) for _, a in results) / k for f in ("timestamp", "level", "message")
        ]
        rows.append(f"| **mean** | | {mean[0]:.3f} | {mean[1]:.3f} | {mean[2]:.3f} | |")
    return rows
