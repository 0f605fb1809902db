"""The layout of a learned header: a RegexLayout built from a HeaderSpec, with its fallbacks.

It is an ordinary :class:`RegexLayout` for the lines that fit the whole
header, so the steady state costs what a named layout costs (one match per
line, one ``findall`` per batch). What it adds is for the lines that do not:
a looser regex that keeps as many leading fields as fit, the arrival day for
stamps without a date, and a late switch of day/month order when a line
proves the default wrong.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

from loglytics.parsing.header import (
    HeaderSpec,
    header_pattern,
    level_lookup,
    loose_pattern,
)
from loglytics.parsing.layouts import LevelSource, RegexLayout
from loglytics.parsing.levels import LEVEL_LOOKUP
from loglytics.parsing.model import ParsedColumns, ParsedLine
from loglytics.parsing.stamps import SHAPES, seconds_fn, swapped
from loglytics.parsing.timestamps import TimestampCache

AUTO: Final = "auto"
"""The format name of every learned layout."""
DAY: Final = 86_400.0
# A time-of-day stamp more than this far past the arrival time is from the day before.
_FUTURE_SLACK: Final = 3_600.0


def _level_source(spec: HeaderSpec, pattern: str) -> LevelSource:
    if "(?P<level>" in pattern:
        return LevelSource.FIELD
    return LevelSource.PRI if spec.pri else LevelSource.GUESS


class LearnedLayout(RegexLayout):
    """A source's learned header as a layout (``format == "auto"``)."""

    __slots__ = ("_loose", "spec")

    def __init__(self, spec: HeaderSpec) -> None:
        pattern = header_pattern(spec)
        stamp = spec.stamp
        seconds = seconds_fn(stamp) if stamp is not None and SHAPES[stamp].wall_clock else None
        source = _level_source(spec, pattern)
        super().__init__(AUTO, pattern, seconds, source, example="")
        extra = level_lookup(spec)
        self.levels = {**LEVEL_LOOKUP, **extra} if extra else LEVEL_LOOKUP
        self.spec = spec
        self._loose = RegexLayout(AUTO, loose_pattern(spec), seconds, source, example="")
        self._loose.levels = self.levels

    @property
    def dates_assumed(self) -> bool:
        """Stamps carry a time of day only: the date is the arrival day."""
        return self.spec.time_only

    def parse(self, line: str, cache: TimestampCache) -> ParsedLine | None:
        """The whole header, else as many leading fields as fit; ``None`` without the stamp."""
        parsed = super().parse(line, cache)
        if parsed is None:
            parsed = self._loose.parse(line, cache)
            if parsed is None:
                return None
        late_order = parsed.timestamp is None and not self.spec.order_settled
        if late_order and self._try_other_order(line, cache):
            return self.parse(line, cache)
        if self.spec.time_only and parsed.timestamp is not None:
            stamp = on_arrival_day(parsed.timestamp, cache.arrival)
            return ParsedLine(stamp, parsed.level, parsed.component, parsed.message, AUTO)
        return parsed

    def parse_columns(self, lines: Sequence[str], cache: TimestampCache) -> ParsedColumns | None:
        """The batch form, when every line fits the whole header (see RegexLayout)."""
        columns = super().parse_columns(lines, cache)
        if columns is None:
            return None
        stamps = columns.timestamps
        if not self.spec.order_settled and None in stamps:
            return None  # line by line: a stamp may prove the other day/month order
        if self.spec.time_only:
            arrival = cache.arrival
            columns.timestamps = [
                None if ts is None else on_arrival_day(ts, arrival) for ts in stamps
            ]
        return columns

    def _try_other_order(self, line: str, cache: TimestampCache) -> bool:
        """A stamp that is no date in the default order but is one swapped settles the order."""
        stamp = self.spec.stamp
        twin = swapped(stamp) if stamp is not None else None
        m = self.regex.match(line) or self._loose.regex.match(line)
        if twin is None or m is None or m["ts"] is None:
            return False
        other = seconds_fn(twin)
        if other(m["ts"], cache.year) is None:
            return False
        self.spec = self.spec.with_stamp(twin)
        self.seconds = self._loose.seconds = other
        cache.clear()
        return True


def on_arrival_day(seconds_of_day: float, arrival: float | None) -> float:
    """A time of day placed on the arrival day (the day before, if it would lie ahead)."""
    if arrival is None or not math.isfinite(arrival):
        return seconds_of_day
    stamp = arrival // DAY * DAY + seconds_of_day
    return stamp - DAY if stamp > arrival + _FUTURE_SLACK else stamp
