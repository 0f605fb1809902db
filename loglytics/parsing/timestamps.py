"""Timestamp conversion with a per-source second-resolution cache.

``datetime.strptime`` costs several microseconds, which alone would blow the
ingest budget. Log timestamps arrive in order and many lines share a second, so
layouts split a stamp into its whole-second text (the cache key), an optional
fraction and an optional zone; only a cache miss pays for real date arithmetic,
done here with plain slicing and :func:`calendar.timegm`.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Sequence
from operator import add, truediv
from types import MappingProxyType
from typing import Final, cast

SecondsFn = Callable[[str, int], float | None]
"""Converts the whole-second text of a stamp (plus a fallback year) to epoch seconds."""

MONTHS: Final = MappingProxyType(
    {name: i for i, name in enumerate(calendar.month_abbr) if name}
    | {name.upper(): i for i, name in enumerate(calendar.month_abbr) if name}
)

_POW10: Final = tuple(10.0**i for i in range(20))

# Bound on cached seconds per source: enough for out-of-order bursts, small
# enough that a years-long replay cannot grow memory without limit.
CACHE_LIMIT: Final = 4096


def _epoch(year: int, month: int, day: int, hh: int, mm: int, ss: int) -> float | None:
    """Seconds since the epoch for a UTC wall-clock time, ``None`` if invalid."""
    if not (1 <= month <= 12 and 1 <= day <= 31 and hh <= 24 and mm <= 59 and ss <= 61):
        return None
    return float(calendar.timegm((year, month, day, hh, mm, ss, 0, 0, 0)))


def two_digit_year(yy: int) -> int:
    """POSIX ``%y`` pivot: 69-99 are 1969-1999, 00-68 are 2000-2068."""
    return yy + (1900 if yy >= 69 else 2000)


def iso_seconds(s: str, _year: int) -> float | None:
    """``YYYY-MM-DD?hh?mm?ss`` with any single-char separators (ISO, log4j, BGL)."""
    try:
        return _epoch(
            int(s[0:4]), int(s[5:7]), int(s[8:10]), int(s[11:13]), int(s[14:16]), int(s[17:19])
        )
    except ValueError:
        return None


def slash_seconds(s: str, _year: int) -> float | None:
    """``yy/MM/dd hh:mm:ss`` (log4j short form, e.g. Spark) or ``yyyy/MM/dd hh:mm:ss``."""
    try:
        date, _, clock = s.partition(" ")
        y, mo, d = date.split("/")
        year = int(y)
        if len(y) == 2:
            year = two_digit_year(year)
        return _epoch(year, int(mo), int(d), int(clock[0:2]), int(clock[3:5]), int(clock[6:8]))
    except ValueError:
        return None


def compact_seconds(s: str, _year: int) -> float | None:
    """``yyMMdd HHmmss`` (Hadoop HDFS default)."""
    try:
        return _epoch(
            two_digit_year(int(s[0:2])),
            int(s[2:4]),
            int(s[4:6]),
            int(s[7:9]),
            int(s[9:11]),
            int(s[11:13]),
        )
    except ValueError:
        return None


def syslog_seconds(s: str, year: int) -> float | None:
    """``Mmm dd hh:mm:ss`` (RFC 3164, no year: the caller supplies one)."""
    try:
        month = MONTHS.get(s[0:3])
        if month is None:
            return None
        return _epoch(year, month, int(s[4:6]), int(s[7:9]), int(s[10:12]), int(s[13:15]))
    except ValueError:
        return None


def ctime_seconds(s: str, _year: int) -> float | None:
    """``Www Mmm dd hh:mm:ss yyyy`` (C ``ctime``; Apache error log), fraction removed."""
    try:
        month = MONTHS.get(s[4:7])
        if month is None:
            return None
        return _epoch(
            int(s[20:24]), month, int(s[8:10]), int(s[11:13]), int(s[14:16]), int(s[17:19])
        )
    except ValueError:
        return None


def epoch_seconds(s: str, _year: int) -> float | None:
    """A decimal count of Unix seconds."""
    try:
        return float(int(s))
    except ValueError:
        return None


def fraction(digits: str) -> float:
    """``"123"`` -> ``0.123`` without going through ``float()`` string parsing."""
    return int(digits) / _POW10[len(digits)] if len(digits) < 20 else 0.0


def add_fractions(stamps: list[float], fracs: Sequence[str]) -> list[float]:
    """``stamp + fraction(frac)`` down two columns (an empty ``frac`` adds nothing).

    ``float(digits)`` is the same number as ``int(digits)`` for the at most nine
    digits a fraction has, so the common case runs as C-level ``map``.
    """
    if all(fracs):
        parts = map(truediv, map(float, fracs), map(_POW10.__getitem__, map(len, fracs)))
        return list(map(add, stamps, parts))
    if not any(fracs):
        return stamps
    return [s + fraction(f) if f else s for s, f in zip(stamps, fracs, strict=True)]


# Zone abbreviations a stamp may end in, in hours east of UTC (only unambiguous ones).
ZONE_NAMES: Final = MappingProxyType(
    {
        "Z": 0, "z": 0, "UTC": 0, "GMT": 0, "WET": 0, "WEST": 1, "BST": 1, "CET": 1,
        "CEST": 2, "EET": 2, "EEST": 3, "EST": -5, "EDT": -4, "CST": -6, "CDT": -5,
        "MST": -7, "MDT": -6, "PST": -8, "PDT": -7, "JST": 9, "AEST": 10, "AEDT": 11,
    }
)  # fmt: skip


def zone_offset(tz: str) -> int | None:
    """Seconds east of UTC for ``Z``, ``+hh``, ``+hhmm``, ``+hh:mm`` or a zone name."""
    hours = ZONE_NAMES.get(tz)
    if hours is not None:
        return hours * 3600
    sign = -1 if tz[0] == "-" else 1
    digits = tz[1:].replace(":", "")
    if not digits.isdigit() or len(digits) not in (2, 4):
        return None
    minutes = int(digits[0:2]) * 60 + (int(digits[2:4]) if len(digits) == 4 else 0)
    return sign * minutes * 60


class TimestampCache:
    """Memo of whole-second stamp text to epoch seconds, owned by one parser.

    Keeping it per instance (not module-global) keeps sources independent and
    lets the cache die with the source.
    """

    __slots__ = ("_cache", "arrival", "year")

    def __init__(self, year: int, arrival: float | None = None) -> None:
        self.year = year
        self.arrival = arrival
        """When the lines being parsed arrived: the day of stamps that carry no date."""
        self._cache: dict[str, float | None] = {}

    def clear(self) -> None:
        """Forget every cached value (the source's stamp reading changed)."""
        self._cache.clear()

    def seconds(self, key: str, fn: SecondsFn) -> float | None:
        """Epoch seconds for ``key``, computing it with ``fn`` on a miss."""
        cache = self._cache
        if key in cache:
            return cache[key]
        if len(cache) >= CACHE_LIMIT:
            cache.clear()
        value = cache[key] = fn(key, self.year)
        return value

    def many(self, keys: Sequence[str], fn: SecondsFn) -> list[float | None]:
        """:meth:`seconds` for a column of keys: one computation per distinct key.

        Consecutive log lines mostly share their second, so a batch holds few
        distinct keys; the per-line work is then a single C-level ``map``.
        """
        values = {key: self.seconds(key, fn) for key in dict.fromkeys(keys)}
        return list(map(values.__getitem__, keys))

    def get(self, key: str) -> float | None:
        """Cached value or ``None``; for callers that inline the fast path."""
        return self._cache.get(key)


_ANY_STAMP: Final = (
    (
        re.compile(
            r"(?P<s>\d{4}-\d\d-\d\d[T _-]\d\d[:.]\d\d[:.]\d\d)(?:[.,](?P<f>\d{1,9}))?"
            r"\s?(?P<z>Z|z|UTC|GMT|[+-]\d\d(?::?\d\d)?)?"
        ),
        iso_seconds,
    ),
    (
        re.compile(r"(?P<s>\d{2}(?:\d\d)?/\d\d/\d\d \d\d:\d\d:\d\d)(?:[.,](?P<f>\d{1,9}))?"),
        slash_seconds,
    ),
    (re.compile(r"(?P<s>\d{6} \d{6})(?:[.,](?P<f>\d{1,9}))?"), compact_seconds),
    (
        re.compile(
            r"(?P<s>[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d)(?:\.(?P<f>\d{1,9}))?"
            r" (?P<y>\d{4})"
        ),
        ctime_seconds,
    ),
    (
        re.compile(r"(?P<s>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d)(?:\.(?P<f>\d{1,9}))?"),
        syslog_seconds,
    ),
)


def parse_timestamp(text: str, cache: TimestampCache) -> float | None:
    """Best-effort epoch seconds for a free-standing stamp string.

    Used off the layout fast path (JSON fields, user patterns) where the stamp
    shape is not known in advance: tries the known shapes in turn.
    """
    text = text.strip()
    if not text:
        return None
    if text[0].isdigit() or text[0] in "+-":
        try:
            n = float(text)
        except ValueError:
            pass
        else:
            return epoch_from_number(n)
    for regex, fn in _ANY_STAMP:
        m = regex.fullmatch(text)
        if m is None:
            continue
        key = m["s"]
        year = m.groupdict().get("y")
        if year is not None:
            key = f"{key} {year}"
        base = cache.seconds(key, fn)
        if base is None:
            return None
        frac = m["f"]
        if frac:
            base += fraction(frac)
        tz = m.groupdict().get("z")
        if tz:
            off = zone_offset(tz)
            if off is not None:
                base -= off
        return base
    return None


def epoch_from_number(n: float) -> float | None:
    """Epoch seconds from a number in s, ms, us or ns (guessed by magnitude)."""
    if n != n or n in (float("inf"), float("-inf")):
        return None
    magnitude = abs(n)
    if magnitude >= 1e17:
        return n / 1e9
    if magnitude >= 1e14:
        return n / 1e6
    if magnitude >= 1e11:
        return n / 1e3
    return float(n)


# The ISO shape of `_ANY_STAMP`, for a column of stamps joined by newlines.
_ISO_COLUMN: Final = re.compile(
    r"^(\d{4}-\d\d-\d\d[T _-]\d\d[:.]\d\d[:.]\d\d)(?:[.,](\d{1,9}))?"
    r"\s?(Z|z|UTC|GMT|[+-]\d\d(?::?\d\d)?)?$",
    re.MULTILINE,
)


def parse_timestamps(texts: Sequence[str], cache: TimestampCache) -> list[float | None]:
    """:func:`parse_timestamp` for a column of stamps (JSON logs), equal item for item.

    Stamps in one stream share their shape, nearly always ISO 8601; one
    ``findall`` over the joined column splits them all, the whole seconds go
    through the cache once per distinct second, and only a column with an
    odd stamp in it is parsed item by item.
    """
    n = len(texts)
    joined = "\n".join(texts)
    if n and joined.count("\n") == n - 1:
        rows = _ISO_COLUMN.findall(joined)
        if len(rows) == n:
            columns = list(zip(*rows, strict=True))
            keys, fracs, zones = columns[0], columns[1], columns[2]
            stamps = cache.many(keys, iso_seconds)
            if None not in stamps:
                out = add_fractions(stamps, fracs)  # type: ignore[arg-type]
                offsets = {z: zone_offset(z) for z in dict.fromkeys(zones) if z}
                if any(offsets.values()):
                    out = [
                        s - off if z and (off := offsets[z]) is not None else s
                        for s, z in zip(out, zones, strict=True)
                    ]
                return cast("list[float | None]", out)  # all floats: no stamp failed
    return [parse_timestamp(text, cache) for text in texts]
