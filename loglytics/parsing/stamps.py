"""Timestamp shapes for the general header detector, and a scanner that finds them in a line's head.

Why a catalogue of shapes rather than one permissive regex: a learned header
compiles into one anchored regex per source (see :mod:`loglytics.parsing.header`),
and each shape contributes its own fragment plus the function that turns the
stamp's whole-second text into epoch seconds. Every shape is written once, as
a regex with field groups (``Y`` year, ``y`` two-digit year, ``m`` month, ``b``
month name, ``d`` day, ``H M S`` clock, ``p`` AM/PM, ``e`` epoch seconds, ``l``
a glog level letter); the layout fragment and the converter are derived from it.

Numeric dates whose field order cannot be read off one line (``01/02/2026``)
are scanned as order-neutral *families*; the detector picks day-first or
month-first over all of a source's lines (:func:`resolve_order`).
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from loglytics.parsing.timestamps import MONTHS, SecondsFn, two_digit_year

# Whole-head scan limit: a stamp must start in the first HEAD_SPAN characters.
HEAD_SPAN: Final = 64
_MON = "(?:" + "|".join(sorted(MONTHS, key=lambda m: (-len(m), m))) + ")"
_WDAY = r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun|MON|TUE|WED|THU|FRI|SAT|SUN)"
_HMS = r"(?P<H>\d\d?):(?P<M>\d\d):(?P<S>\d\d)"
_ZONES: Final = (
    "UTC|GMT|CEST|CET|EEST|EET|WEST|WET|BST|EST|EDT|CST|CDT|MST|MDT|PST|PDT|JST|AEST|AEDT"
)
# What follows the whole seconds: a fraction, then a zone written against the
# stamp (``Z``, ``+01:00``) or after a space (``+0000``, ``UTC``).
_FRAC_SCAN = r"(?:(?P<fs>[.,]|:(?=\d{1,3}(?!\d)))(?P<f>\d{1,9}))?"
_ZONE_SCAN = (
    rf"(?:(?P<za>Z|[+-]\d\d:?\d\d|[+-]\d\d(?![\d:]))|(?P<zs> (?:[+-]\d\d:?\d\d|{_ZONES})))?"
)
FRAC_FRAGMENT: Final = MappingProxyType(
    {
        "": "",
        ".": r"(?:[.,](?P<frac>\d{1,9}))?",
        ":": r"(?::(?P<frac>\d{1,3})(?!\d))?",
        "glued": r"(?P<frac>\d{3})",
    }
)
ZONE_FRAGMENT: Final = MappingProxyType(
    {
        "": "",
        "attached": r"(?P<tz>Z|[+-]\d\d(?::?\d\d)?)?",
        "spaced": rf"(?: (?P<tz>[+-]\d\d:?\d\d|{_ZONES}))?",
    }
)


@dataclass(frozen=True, slots=True)
class Shape:
    """One way of writing a stamp; ``body`` is the regex of its whole-second text."""

    name: str
    body: str
    yearless: bool = False
    """No year in the text: the parser's default year is used."""
    time_only: bool = False
    """No date in the text: the arrival day is used (and the line says so in a flag)."""
    wall_clock: bool = True
    """False for uptime counters (dmesg): a header field, but no time of day."""
    year_after: bool = False
    """ctime: the year follows the fraction (``Wed Oct 11 14:32:52.123 2000``)."""
    glued_frac: bool = False
    """Epoch milliseconds: the fraction is the last three digits, with no separator."""
    date_apart: bool = False
    """A time of day whose date is another field of the line: the layout captures that
    field as ``year`` and the converter reads ``"hh:mm:ss yyyy-mm-dd"``."""


def _numeric_shapes() -> list[Shape]:
    out: list[Shape] = []
    for sep in "-/.":
        s = re.escape(sep)
        out.append(
            Shape(
                "ymd" + sep,
                rf"(?P<Y>\d{{4}}){s}(?P<m>\d\d?){s}(?P<d>\d\d?)(?:T|[ _:-]| {{2}}){_HMS}",
            )
        )
        for order, (a, b) in (("dmy", ("d", "m")), ("mdy", ("m", "d"))):
            out.append(
                Shape(
                    order + sep,
                    rf"(?P<{a}>\d\d?){s}(?P<{b}>\d\d?){s}(?P<Y>\d{{4}})(?:[ T:]|, ){_HMS}",
                )
            )
            out.append(
                Shape(order[:2] + sep, rf"(?P<{a}>\d\d){s}(?P<{b}>\d\d)[ T]{_HMS}", yearless=True)
            )
        for order in ("ymd", "dmy", "mdy"):
            fields = s.join(rf"(?P<{c}>\d\d)" for c in order)
            out.append(Shape(order + "2" + sep, fields + " " + _HMS))
    return out


SHAPES: Final = MappingProxyType(
    {
        shape.name: shape
        for shape in (
            *_numeric_shapes(),
            Shape("syslog", rf"(?P<b>{_MON}) {{1,2}}(?P<d>\d\d?) {_HMS}", yearless=True),
            Shape(
                "bdy",
                rf"(?P<b>{_MON}) {{1,2}}(?P<d>\d\d?),? (?P<Y>\d{{4}}),? {_HMS}"
                r"(?: (?P<p>[AaPp][Mm]))?",
            ),
            Shape("ctime", rf"{_WDAY} (?P<b>{_MON}) {{1,2}}(?P<d>\d\d?) {_HMS}", year_after=True),
            Shape("clf", rf"(?P<d>\d\d?)/(?P<b>{_MON})/(?P<Y>\d{{4}}):{_HMS}"),
            Shape(
                "dby", rf"(?:{_WDAY},? )?(?P<d>\d\d?)[ -](?P<b>{_MON})[ -](?P<Y>\d{{4}})[ :]{_HMS}"
            ),
            Shape(
                "compact",  # 20261201T100000, 20261201100000
                r"(?P<Y>(?:19|20)\d\d)(?P<m>[01]\d)(?P<d>[0-3]\d)[T -]?"
                r"(?P<H>[0-2]\d)(?P<M>[0-5]\d)(?P<S>[0-6]\d)",
            ),
            Shape(
                "compact_date",  # 20261201-10:00:00, 20261201 9:05:00
                r"(?P<Y>(?:19|20)\d\d)(?P<m>[01]\d)(?P<d>[0-3]\d)[T -]"
                r"(?P<H>[0-2]?\d):(?P<M>[0-5]\d):(?P<S>[0-6]\d)",
            ),
            Shape(
                "compact2",  # Hadoop HDFS: yyMMdd HHmmss
                r"(?P<y>\d\d)(?P<m>[01]\d)(?P<d>[0-3]\d) "
                r"(?P<H>[0-2]\d)(?P<M>[0-5]\d)(?P<S>[0-6]\d)",
            ),
            Shape(
                "dotted",  # IBM DB2 / BGL: yyyy-MM-dd-HH.mm.ss.ffffff
                r"(?P<Y>\d{4})-(?P<m>\d\d)-(?P<d>\d\d)-(?P<H>\d\d)\.(?P<M>\d\d)\.(?P<S>\d\d)",
            ),
            Shape("glog", rf"(?P<m>[01]\d)(?P<d>[0-3]\d) {_HMS}", yearless=True),
            Shape("epoch", r"(?P<e>[12]\d{9})"),
            Shape("epoch_ms", r"(?P<e>[12]\d{9})", glued_frac=True),
            Shape("uptime", r"(?P<u> {0,12}\d{1,10})", wall_clock=False),
            Shape("time", _HMS, time_only=True),
            Shape(
                "time_dated",
                _HMS + r" (?P<Y>\d{4})[-/.](?P<m>\d\d?)[-/.](?P<d>\d\d?)",
                date_apart=True,
            ),
        )
    }
)
"""Every shape by name."""

# Families that share one text form, scanned order-neutral: name -> candidate shapes.
_FAMILIES: Final = MappingProxyType(
    {
        **{f"n3{sep}": (f"dmy{sep}", f"mdy{sep}") for sep in "-/."},
        **{f"n2{sep}": (f"dm{sep}", f"md{sep}") for sep in "-/."},
        **{f"n3y2{sep}": (f"ymd2{sep}", f"dmy2{sep}", f"mdy2{sep}") for sep in "-/."},
    }
)
# Field order of a family's neutral groups (a, b, c) under each candidate shape.
_ORDER: Final = MappingProxyType(
    {
        **{f"dmy{sep}": "dmY" for sep in "-/."},
        **{f"mdy{sep}": "mdY" for sep in "-/."},
        **{f"dm{sep}": "dm" for sep in "-/."},
        **{f"md{sep}": "md" for sep in "-/."},
        **{f"ymd2{sep}": "ymd" for sep in "-/."},
        **{f"dmy2{sep}": "dmy" for sep in "-/."},
        **{f"mdy2{sep}": "mdy" for sep in "-/."},
    }
)
# Which order a family takes when no line tells: '.' and '-' dates are day-first in
# most locales that write them, '/' is month-first (US) unless a day above 12 shows.
_DEFAULT_ORDER: Final = MappingProxyType(
    {
        **{f"n3{sep}": ("mdy" if sep == "/" else "dmy") + sep for sep in "-/."},
        **{f"n2{sep}": "md" + sep for sep in "-/."},  # logcat, Proxifier: month first
        **{f"n3y2{sep}": ("ymd2" if sep == "/" else "dmy2") + sep for sep in "-/."},
    }
)


def _neutral(shape_name: str, family: str) -> str:
    """A family member's body with its date groups renamed x0, x1, x2 (in text order)."""
    body = SHAPES[shape_name].body
    for i, field in enumerate(_ORDER[shape_name]):
        body = body.replace(f"(?P<{field}>", f"(?P<x{i}>", 1)
    del family
    return body


def _scan_bodies() -> tuple[tuple[str, re.Pattern[str]], ...]:
    """(shape or family name, scanning regex) for every shape and family."""
    plain = [n for n in SHAPES if n not in _ORDER and n not in ("uptime", "time_dated")]
    bodies = [(name, SHAPES[name].body) for name in plain]
    bodies += [(fam, _neutral(members[0], fam)) for fam, members in _FAMILIES.items()]
    out = []
    for name, body in bodies:
        shape = SHAPES.get(name)
        left = r"(?<![\w.:/+-])"
        if name == "glog":  # the level letter leads the stamp: I1201 10:00:00.123456
            left += r"(?P<lv>[IWEFDV])"
        frac = _FRAC_SCAN
        if name == "epoch":
            frac = r"(?:(?P<fs>\.)(?P<f>\d{1,9}))?"
        elif name == "epoch_ms":
            frac = r"(?P<fs>)(?P<f>\d{3})"
        year = r" (?P<yr>\d{4})" if shape is not None and shape.year_after else ""
        zone = _ZONE_SCAN if name not in _ZONELESS else ""
        out.append((name, re.compile(f"{left}(?P<ts>{body}){frac}{year}{zone}(?!\\d)")))
    uptime = r"(?<=\[)(?P<ts> {0,12}\d{1,10})(?P<fs>\.)(?P<f>\d{1,9})(?=\])"
    out.append(("uptime", re.compile(uptime)))
    return tuple(out)


_ZONELESS: Final = frozenset({"epoch", "epoch_ms", "glog", "uptime"})


@dataclass(frozen=True, slots=True)
class StampHit:
    """One stamp found in a line's head."""

    shape: str
    """A shape name, or a family name (``n3/``...) when the field order is open."""
    start: int
    end: int
    frac: str
    frac_sep: str
    zone: str
    """``""``, ``"attached"`` or ``"spaced"``."""
    fields: tuple[int, ...]
    """The neutral date fields (in text order) of a family hit, for :func:`resolve_order`."""

    @property
    def rank(self) -> tuple[int, int, int, int]:
        """Which of two stamps on a line to take: a date at all first, then precision
        (fraction digits), then completeness (a year, a zone). A time of day without a
        date never beats a dated stamp, however precise; an uptime counter beats nothing."""
        shape = SHAPES.get(self.shape)
        if shape is not None and not shape.wall_clock:
            return (-1, -1, -1, -1)
        date = 0 if shape is not None and shape.time_only else 1
        year = int(shape is None or not (shape.yearless or shape.time_only))
        return (date, len(self.frac), year, int(bool(self.zone)))


class StampScanner:
    """Finds every stamp that starts in the first :data:`HEAD_SPAN` characters of a line."""

    __slots__ = ("_bodies",)

    def __init__(self) -> None:
        self._bodies = _scan_bodies()

    def scan(self, line: str) -> list[StampHit]:
        """Non-overlapping hits in line order; at one position the longest shape wins."""
        head = line[: HEAD_SPAN + 48]
        hits: list[StampHit] = []
        for name, regex in self._bodies:
            for m in regex.finditer(head):
                if m.start() >= HEAD_SPAN:
                    break
                g = m.groupdict()
                zone = "attached" if g.get("za") else "spaced" if g.get("zs") else ""
                fields = tuple(int(g[k]) for k in ("x0", "x1", "x2") if g.get(k))
                frac, sep = g.get("f") or "", g.get("fs") or ""
                hits.append(StampHit(name, m.start(), m.end(), frac, sep, zone, fields))
        hits.sort(key=lambda h: (h.start, -(h.end - h.start)))
        kept: list[StampHit] = []
        for hit in hits:
            if not kept or hit.start >= kept[-1].end:
                kept.append(hit)
        return kept


def resolve_order(family: str, fields: Iterable[tuple[int, ...]]) -> tuple[str | None, bool]:
    """The member of ``family`` every line's date fits, and whether the lines proved it.

    A field above 12 cannot be a month and one above 31 cannot be a day, so
    one such line settles the order for the whole source; with no such line
    the family's default order is taken (not proved: later lines may still
    prove the other order, see :func:`swapped`). ``None`` when no order fits.
    """
    if family not in _FAMILIES:
        return family, True
    rows = list(fields)
    fits = [
        name
        for name in _FAMILIES[family]
        if all(_fits(_ORDER[name], row) for row in rows if len(row) == len(_ORDER[name]))
    ]
    if not fits:
        return None, True
    default = _DEFAULT_ORDER[family]
    return (default if default in fits else fits[0]), len(fits) == 1


def _fits(order: str, row: Sequence[int]) -> bool:
    limits = {"d": 31, "m": 12, "y": 99, "Y": 9999}
    return all(
        1 <= v <= limits[c] or (c in "yY" and v == 0) for c, v in zip(order, row, strict=True)
    )


def is_family(name: str) -> bool:
    """True for an order-neutral family name (``n3/``), false for a shape."""
    return name in _FAMILIES


def swapped(shape_name: str) -> str | None:
    """The day/month-swapped twin of a numeric shape, for late evidence (``None`` if none)."""
    twins = {"dmy": "mdy", "mdy": "dmy", "dm": "md", "md": "dm", "dmy2": "mdy2", "mdy2": "dmy2"}
    stem, sep = shape_name[:-1], shape_name[-1:]
    twin = twins.get(stem)
    return twin + sep if twin is not None else None


def seconds_fn(shape_name: str) -> SecondsFn:
    """The converter of a shape's whole-second text to epoch seconds (``None`` when invalid)."""
    shape = SHAPES[shape_name]
    body = shape.body + (r" (?P<yr>\d{4})" if shape.year_after else "")
    regex = re.compile(body)

    def seconds(text: str, year: int) -> float | None:
        m = regex.fullmatch(text)
        if m is None:
            return None
        found = {k: v for k, v in m.groupdict().items() if v is not None}
        if "e" in found:
            return float(int(found["e"]))
        return _to_epoch(found, year, shape)

    return seconds


def _to_epoch(found: dict[str, str], year: int, shape: Shape) -> float | None:
    if shape.time_only:
        y, mo, d = 1970, 1, 1
    else:
        if "Y" in found:
            y = int(found["Y"])
        elif "yr" in found:
            y = int(found["yr"])
        elif "y" in found:
            y = two_digit_year(int(found["y"]))
        else:
            y = year
        mo = MONTHS[found["b"]] if "b" in found else int(found["m"])
        d = int(found["d"])
    hh, mm, ss = int(found["H"]), int(found["M"]), int(found["S"])
    if "p" in found:
        if not 1 <= hh <= 12:
            return None
        hh = hh % 12 + (12 if found["p"].upper() == "PM" else 0)
    if not (1 <= mo <= 12 and 1 <= d <= calendar.monthrange(y, mo)[1] and hh <= 24):
        return None
    if mm > 59 or ss > 61:
        return None
    return float(calendar.timegm((y, mo, d, hh, mm, ss, 0, 0, 0)))


def stamp_fragment(shape_name: str, frac: str, zone: str) -> str:
    """The layout regex of a stamp: ``ts`` (whole seconds), ``frac``, ``year``, ``tz`` groups.

    The shape's field groups become non-capturing, so the only groups left are
    the layout's shared names (and ``level`` for glog, whose letter leads the
    stamp).
    """
    if shape_name == "uptime":
        return r" {0,12}\d{1,10}\.\d{1,9}"  # its brackets are the learned open/close
    shape = SHAPES[shape_name]
    body = re.sub(r"\(\?P<\w+>", "(?:", _HMS if shape.date_apart else shape.body)
    lead = r"(?P<level>[IWEFDV])" if shape_name == "glog" else ""
    if shape.glued_frac:
        frac_part = FRAC_FRAGMENT["glued"]
    elif shape_name == "epoch":
        frac_part = r"(?:\.(?P<frac>\d{1,9}))?" if frac else ""
    else:
        frac_part = FRAC_FRAGMENT[frac]
    year = r" (?P<year>\d{4})" if shape.year_after else ""
    zone_part = "" if shape_name in _ZONELESS else ZONE_FRAGMENT[zone]
    return f"{lead}(?P<ts>{body}){frac_part}{year}{zone_part}(?!\\d)"
