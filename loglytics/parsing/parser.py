"""LineParser: format detection once per source, then one regex match per line."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from typing import Final

from loglytics.parsing.formats import DETECTION_ORDER, FORMATS
from loglytics.parsing.layouts import CustomLayout, Layout
from loglytics.parsing.levels import guess_level
from loglytics.parsing.model import ParsedColumns, ParsedLine
from loglytics.parsing.timestamps import TimestampCache

# Lines run through full detection before the parser commits to a layout.
# One line can be ambiguous (a log4j line whose thread name has odd brackets
# only fits the generic ``iso`` layout); a short vote makes the choice robust.
PROBE_LINES: Final = 8
# Consecutive lines that must fit another layout (and not the current one)
# before the parser switches. Switching on a single odd line would be costly:
# a generic layout such as ``iso`` also fits every later log4j line, so the
# parser would never come back and components would be lost for good.
SWITCH_AFTER: Final = 3


def raw_line(line: str) -> ParsedLine:
    """The fallback for a line no layout explains: keep the text, guess the level."""
    return ParsedLine(None, guess_level(line), None, line, "raw")


class LineParser:
    """One per source: detects the format on the first lines and then sticks to it.

    Re-detects when a line no longer matches, so the steady state costs one
    compiled regex match. ``format`` forces a named layout and ``pattern`` a
    user regex with named groups (``timestamp``, ``level``, ``component``,
    ``message``): the per-source override when detection is not wanted. Lines
    that fit nothing come back as ``format="raw"``; :meth:`parse` never raises.
    """

    __slots__ = ("_cache", "_forced", "_layout", "_misses", "_probe", "_votes")

    def __init__(
        self,
        format: str | None = None,
        pattern: str | None = None,
        *,
        default_year: int | None = None,
    ) -> None:
        if format is not None and pattern is not None:
            raise ValueError("give either format or pattern, not both")
        year = default_year if default_year is not None else time.gmtime().tm_year
        self._cache = TimestampCache(year)
        self._layout: Layout | None = None
        self._forced = False
        if pattern is not None:
            self._layout = CustomLayout(pattern)
            self._forced = True
        elif format is not None:
            layout = FORMATS.get(format)
            if layout is None:
                raise ValueError(f"unknown format {format!r}; known: {', '.join(FORMATS)}")
            self._layout = layout
            self._forced = True
        self._probe = 0 if self._forced else PROBE_LINES
        self._votes: Counter[str] = Counter()
        self._misses = 0

    @property
    def format(self) -> str | None:
        """Name of the layout currently in use (``None`` before any line matched)."""
        return None if self._layout is None else self._layout.name

    def parse(self, line: str) -> ParsedLine:
        """Parse one line (trailing whitespace and newline are dropped)."""
        line = line.rstrip()
        layout = self._layout
        if layout is not None and not self._probe:
            parsed = layout.parse(line, self._cache)
            if parsed is not None:
                if self._misses:
                    self._misses = 0
                return parsed
            if self._forced:
                return raw_line(line)
            return self._redetect(line)
        return self._detect(line)

    def parse_many(self, lines: Sequence[str]) -> list[ParsedLine]:
        """Parse a batch; same results as calling :meth:`parse` on each line."""
        parse = self.parse
        return [parse(line) for line in lines]

    def parse_columns(self, lines: Sequence[str]) -> ParsedColumns | None:
        """:meth:`parse_many` as columns, in one pass, once the layout is settled.

        ``None`` while detection is still probing, for layouts without a batch
        form, and whenever a line does not fit the current layout: the caller
        then parses line by line, which also runs re-detection.
        """
        layout = self._layout
        if layout is None or self._probe:
            return None
        columns = layout.parse_columns(lines, self._cache)
        if columns is not None:
            self._misses = 0
        return columns

    def _first_match(self, line: str) -> tuple[ParsedLine, Layout | None]:
        """Parse with the first layout in detection order that fits, else as raw."""
        cache = self._cache
        for layout in DETECTION_ORDER:
            parsed = layout.parse(line, cache)
            if parsed is not None:
                return parsed, layout
        return raw_line(line), None

    def _detect(self, line: str) -> ParsedLine:
        """Probe phase: full detection per line; the layout seen most often wins."""
        parsed, layout = self._first_match(line)
        if layout is not None:
            self._probe -= 1
            self._votes[layout.name] += 1
            self._layout = FORMATS[self._votes.most_common(1)[0][0]]
            if not self._probe:
                self._votes.clear()
        return parsed

    def _redetect(self, line: str) -> ParsedLine:
        """The current layout missed: parse this line by detection, switch if it keeps missing.

        Lines no layout fits (stack traces, wrapped text) neither count nor reset
        the miss streak, so a source that changed format mid-stream still switches.
        """
        parsed, layout = self._first_match(line)
        if layout is not None:
            self._misses += 1
            if self._misses >= SWITCH_AFTER:
                self._layout = layout
                self._misses = 0
        return parsed


def parse_line(line: str) -> ParsedLine:
    """Stateless convenience: detect and parse a single line.

    Builds a throw-away parser, so it pays for detection every time; use a
    :class:`LineParser` per source on any hot path.
    """
    return LineParser().parse(line)
