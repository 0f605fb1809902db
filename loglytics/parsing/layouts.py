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
from collections.abc import Mapping, Sequence
from enum import Enum
from operator import itemgetter
from typing import Final, cast

from loglytics.parsing.levels import (
    LEVEL_LOOKUP,
    SYSLOG_SEVERITY,
    guess_level,
    normalise_level,
)
from loglytics.parsing.model import ParsedColumns, ParsedLine
from loglytics.parsing.timestamps import (
    SecondsFn,
    TimestampCache,
    add_fractions,
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

    def parse_columns(self, lines: Sequence[str], cache: TimestampCache) -> ParsedColumns | None:
        """Parse a batch in one go, or ``None`` when this layout cannot (then parse line by line).

        When it answers, the answer equals :meth:`parse` on each line; it answers
        only when every line fits the layout.
        """
        return None


def _groups_that_can_be_empty(pattern: re.Pattern[str]) -> frozenset[str]:
    """Names of the groups of ``pattern`` that can match the empty string.

    ``findall`` reports a group that did not take part as ``""``, where a match
    object says ``None``; for a group that cannot be empty the two agree, which
    is what lets :meth:`RegexLayout.parse_columns` read fields out of ``findall``.
    """
    names = {number: name for name, number in pattern.groupindex.items()}
    empty: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, re._parser.SubPattern):  # type: ignore[attr-defined]
            for op, av in node.data:
                if op is re._constants.SUBPATTERN:  # type: ignore[attr-defined]
                    group, sub = av[0], av[3]
                    if group in names and sub.getwidth()[0] == 0:
                        empty.add(names[group])
                walk(av)
        elif isinstance(node, list | tuple):
            for item in node:
                walk(item)

    walk(re._parser.parse(pattern.pattern, pattern.flags))  # type: ignore[attr-defined]
    return frozenset(empty)


# Groups whose empty match means the same as no match for every consumer: an
# empty message is "" either way, and the thread name is never read.
_EMPTY_IS_NONE_EXEMPT: Final = frozenset({"message", "thread"})
# Groups the columns leave out (a ParsedColumns has no component), so the bulk form
# does not capture them.
_NOT_IN_COLUMNS: Final = ("component", "thread")


class RegexLayout(Layout):
    """A layout described by one anchored regex using the shared group names."""

    __slots__ = (
        "_bulk",
        "_column",
        "_has_component",
        "_has_frac",
        "_has_tz",
        "_has_year",
        "_match",
        "example",
        "level_source",
        "levels",
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
        self.levels: Mapping[str, str] = LEVEL_LOOKUP
        """Exact spellings of the level field (a learned layout adds symbols or HTTP statuses)."""
        self._match = self.regex.match
        groups = self.regex.groupindex
        self._has_frac = "frac" in groups
        self._has_tz = "tz" in groups
        self._has_year = "year" in groups
        self._has_component = "component" in groups
        self._bulk = self._bulk_regex(pattern)
        bulk_groups = self._bulk.groupindex if self._bulk is not None else {}
        self._column = {name: itemgetter(number - 1) for name, number in bulk_groups.items()}

    def _bulk_regex(self, pattern: str) -> re.Pattern[str] | None:
        """The same layout for a whole batch joined by newlines, or None if it has no such form.

        Anchored at each line start, with the message stopping at the newline;
        :meth:`parse_columns` checks that every line produced exactly one match,
        which is what makes this equal to matching the lines one by one.
        """
        if pattern.count("(?P<message>.*)") != 1:
            return None
        if _groups_that_can_be_empty(self.regex) - _EMPTY_IS_NONE_EXEMPT:
            return None
        bulk = pattern.replace("(?P<message>.*)", "(?P<message>[^\\n]*)")
        for name in _NOT_IN_COLUMNS:  # every captured group is a string per line: keep fewer
            bulk = bulk.replace(f"(?P<{name}>", "(?:")
        return re.compile("^(?:" + bulk + ")", re.DOTALL | re.MULTILINE)

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
                level = self.levels.get(raw) or normalise_level(raw)
        elif source is LevelSource.PRI:
            pri = m["pri"]
            level = SYSLOG_SEVERITY[int(pri) & 7] if pri is not None else guess_level(message)
        else:
            level = guess_level(message)
        component = m["component"] if self._has_component else None
        return ParsedLine(timestamp, level, component, message, self.name)

    def parse_columns(self, lines: Sequence[str], cache: TimestampCache) -> ParsedColumns | None:
        """One ``findall`` over the joined batch instead of one match per line.

        Why: per line, the match object and the group look-ups cost more than
        the matching itself. The fields come back as columns, and timestamps,
        fractions and levels are then converted per distinct value or with
        C-level ``map``; any rarely seen case (a line that does not fit, a zone,
        a missing fraction, an unknown level word) takes a per-line loop that
        mirrors :meth:`parse`.
        """
        bulk = self._bulk
        n = len(lines)
        if bulk is None or not n:
            return None
        if any(map(str.isspace, map(itemgetter(-1), filter(None, lines)))):
            lines = list(map(str.rstrip, lines))  # parse() right-strips each line
        text = "\n".join(lines)
        if "" in lines or text.count("\n") != n - 1:
            return None  # an empty line, or a line holding a newline: one match per line fails
        rows = bulk.findall(text)
        if len(rows) != n:
            return None  # some line does not fit (or a match ran over a line end)
        messages = list(map(self._column["message"], rows))
        return ParsedColumns(self._stamps(rows, cache), self._levels(rows, messages), messages)

    def _stamps(self, rows: list[tuple[str, ...]], cache: TimestampCache) -> list[float | None]:
        seconds = self.seconds
        if seconds is None:
            return [None] * len(rows)
        column = self._column
        keys = list(map(column["ts"], rows))
        if "" in keys:
            return [self._stamp_of(row, cache) for row in rows]
        if self._has_year:
            keys = list(map("{} {}".format, keys, map(column["year"], rows)))
        stamps = cache.many(keys, seconds)
        zones = list(map(column["tz"], rows)) if self._has_tz else []
        if None in stamps or any(zones):
            return [self._stamp_of(row, cache) for row in rows]
        if not self._has_frac:
            return stamps
        fracs = list(map(column["frac"], rows))
        return cast("list[float | None]", add_fractions(cast("list[float]", stamps), fracs))

    def _stamp_of(self, row: tuple[str, ...], cache: TimestampCache) -> float | None:
        """One row's timestamp exactly as :meth:`parse` computes it (the rare cases)."""
        column = self._column
        seconds = self.seconds
        key = column["ts"](row)
        if seconds is None or not key:
            return None
        if self._has_year:
            key = key + " " + column["year"](row)
        timestamp = cache.seconds(key, seconds)
        if timestamp is None:
            return None
        if self._has_tz:
            tz = column["tz"](row)
            off = zone_offset(tz) if tz else None
            if off:
                timestamp -= off
        if self._has_frac:
            frac = column["frac"](row)
            if frac:
                timestamp += fraction(frac)
        return timestamp

    def _levels(self, rows: list[tuple[str, ...]], messages: list[str]) -> list[str]:
        source = self.level_source
        if source is LevelSource.GUESS:
            return list(map(guess_level, messages))
        if source is LevelSource.PRI:
            pris = list(map(self._column["pri"], rows))
            known = {p: SYSLOG_SEVERITY[int(p) & 7] for p in dict.fromkeys(pris) if p}
            if len(known) == len(set(pris)):
                return list(map(known.__getitem__, pris))
            return [known[p] if p else guess_level(m) for p, m in zip(pris, messages, strict=True)]
        raws = list(map(self._column["level"], rows))
        levels = list(map(self.levels.get, raws))
        if None not in levels:
            return levels  # type: ignore[return-value]
        return [
            lv or (normalise_level(raw) if raw else guess_level(msg))
            for lv, raw, msg in zip(levels, raws, messages, strict=True)
        ]


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
