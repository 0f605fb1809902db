"""Layout objects: one compiled regex plus the recipe to turn its match into a ParsedLine.

Every regex layout uses the same group names so a single generic builder serves
them all: ``ts`` (whole-second stamp text, the cache key), ``frac``, ``tz``,
``year`` (a year printed apart from the rest, as in ctime), ``level``, ``pri``
(syslog priority), ``component`` and ``message``. The builder's per-line work
is therefore a handful of group look-ups and one dict hit for the timestamp.

Header fields use bounded repetitions so that a pathological line costs at most
linear time times a small constant; only ``message`` is unbounded.
"""

from __future__ import annotations

import re
from enum import Enum

from loglytics.parsing.levels import (
    LEVEL_LOOKUP,
    SYSLOG_SEVERITY,
    guess_level,
    normalise_level,
)
from loglytics.parsing.model import ParsedLine
from loglytics.parsing.timestamps import (
    SecondsFn,
    TimestampCache,
    fraction,
    parse_timestamp,
    zone_offset,
)


class LevelSource(Enum):
    """Where a layout's level comes from."""

    FIELD = "field"
    """The ``level`` group, falling back to a guess when the group did not take part."""
    PRI = "pri"
    """Syslog ``<PRI>`` severity when present, else a guess from the message."""
    GUESS = "guess"
    """The layout has no level field: scan the message for level words."""


class Layout:
    """Base class: turns one line into a ParsedLine, or ``None`` if it does not fit."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def parse(self, line: str, cache: TimestampCache) -> ParsedLine | None:
        """Parse ``line`` (already right-stripped) or return ``None`` when it does not match."""
        raise NotImplementedError


class RegexLayout(Layout):
    """A layout described by one anchored regex using the shared group names."""

    __slots__ = (
        "_has_component",
        "_has_frac",
        "_has_tz",
        "_has_year",
        "_match",
        "example",
        "level_source",
        "regex",
        "seconds",
    )

    def __init__(
        self,
        name: str,
        pattern: str,
        seconds: SecondsFn | None,
        level_source: LevelSource,
        example: str,
    ) -> None:
        super().__init__(name)
        # DOTALL: a line containing a stray newline must keep all of its text in
        # ``message`` rather than being cut at the newline.
        self.regex = re.compile(pattern, re.DOTALL)
        self.seconds = seconds
        self.level_source = level_source
        self.example = example
        self._match = self.regex.match
        groups = self.regex.groupindex
        self._has_frac = "frac" in groups
        self._has_tz = "tz" in groups
        self._has_year = "year" in groups
        self._has_component = "component" in groups

    def parse(self, line: str, cache: TimestampCache) -> ParsedLine | None:
        """Match and build; the steady-state cost of ingest."""
        m = self._match(line)
        if m is None:
            return None
        timestamp: float | None = None
        seconds = self.seconds
        if seconds is not None:
            key = m["ts"]
            if key is not None:
                if self._has_year:
                    key = key + " " + m["year"]
                if self._has_tz:
                    tz = m["tz"]
                    timestamp = cache.seconds(key, seconds)
                    if timestamp is not None and tz is not None:
                        off = zone_offset(tz)
                        if off:
                            timestamp -= off
                else:
                    timestamp = cache.seconds(key, seconds)
                if timestamp is not None and self._has_frac:
                    frac = m["frac"]
                    if frac:
                        timestamp += fraction(frac)
        message = m["message"] or ""
        source = self.level_source
        if source is LevelSource.FIELD:
            raw = m["level"]
            if raw is None:
                level = guess_level(message)
            else:
                level = LEVEL_LOOKUP.get(raw) or normalise_level(raw)
        elif source is LevelSource.PRI:
            pri = m["pri"]
            level = SYSLOG_SEVERITY[int(pri) & 7] if pri is not None else guess_level(message)
        else:
            level = guess_level(message)
        component = m["component"] if self._has_component else None
        return ParsedLine(timestamp, level, component, message, self.name)


class CustomLayout(Layout):
    """A user-supplied regex with named groups ``timestamp``, ``level``, ``component``, ``message``.

    The per-source escape hatch for layouts detection does not know; the
    timestamp shape is not known in advance, so it goes through the generic
    (slower) stamp parser.
    """

    __slots__ = ("_groups", "regex")

    def __init__(self, pattern: str) -> None:
        super().__init__("custom")
        self.regex = re.compile(pattern, re.DOTALL)
        self._groups = frozenset(self.regex.groupindex)

    def parse(self, line: str, cache: TimestampCache) -> ParsedLine | None:
        """Match the user regex; missing groups fall back to neutral values."""
        m = self.regex.match(line)
        if m is None:
            return None
        groups = self._groups
        stamp = m["timestamp"] if "timestamp" in groups else None
        timestamp = parse_timestamp(stamp, cache) if stamp else None
        message = (m["message"] or "") if "message" in groups else line
        raw_level = m["level"] if "level" in groups else None
        level = normalise_level(raw_level) if raw_level else guess_level(message)
        component = (m["component"] or None) if "component" in groups else None
        return ParsedLine(timestamp, level, component, message, self.name)
