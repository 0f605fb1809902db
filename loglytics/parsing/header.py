"""A source's learned header: a small serialisable value, and the layout compiled from it.

Why a spec rather than a stored regex: the spec is what the detector learned
(which stamp shape where, which fields after it, where the level sits), it is
a few dozen bytes in the source's state row, and the regex is derived from it
in one place (:func:`header_pattern`), so a change to a fragment applies to
every source on its next restore.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any, Final

from loglytics.parsing.levels import LEVEL_WORDS
from loglytics.parsing.stamps import SHAPES, stamp_fragment

SPEC_VERSION: Final = 1

# Level words as a header field may spell them: the known spellings of three or
# more letters (single letters have their own field kind), longest first so
# that WARNING is not cut to WARN.
_LEVEL_ALT: Final = (
    "(?i:"
    + "|".join(sorted((w for w in LEVEL_WORDS if len(w) >= 3), key=lambda w: (-len(w), w)))
    + ")"
)
_NESTED = r"(?:[^{o}{c}\n]|{O}[^{o}{c}\n]{{0,256}}{C}){{0,1024}}"
_FIELD_REGEX: Final = MappingProxyType(
    {
        "num": r"\d{1,20}",
        "word": r"[^ \t]{1,256}",
        "bracket": r"\[" + _NESTED.format(o=r"\[", c=r"\]", O=r"\[", C=r"\]") + r"\]",
        "paren": r"\(" + _NESTED.format(o="()", c="", O=r"\(", C=r"\)") + r"\)",
        "brace": r"\{[^{}\n]{0,1024}\}",
        "angle": r"<[^<>\n]{0,256}>",
        "date": r"\d{1,4}[-/.]\d\d?[-/.]\d{2,4}",
        "symbol": r"(?P<level>[.*#-])",
        "letter": r"(?P<level>[A-Z])",
        "level": "(?P<level>" + _LEVEL_ALT + ")",
    }
)
# Rust tracing writes its spans before the target: `INFO req{id=1}: app::db: slow`.
_SPANS = r"(?:(?:[^ \t{}:]{0,64}\{[^{}\n]{0,512}\}:){1,8}[ \t]+)?"
_UP_TO_SEP = r"[^ \t][^\n]{0,63}?"
# The level of an access log line: the status after the quoted request.
_HTTP_STATUS = r'(?=[^\n]{0,2048}?"[A-Z]{3,10} [^"\n]{0,2048}" (?P<level>[1-5]\d\d)\b)?'

REDIS_LEVELS: Final = MappingProxyType({".": "DEBUG", "-": "DEBUG", "*": "NOTICE", "#": "WARN"})
HTTP_LEVELS: Final = MappingProxyType(
    {
        str(code): "ERROR" if code >= 500 else "WARN" if code >= 400 else "INFO"
        for code in range(100, 600)
    }
)


@dataclass(frozen=True, slots=True)
class Field:
    """One header field: its kind, and the literal text glued around it (``[`` ``]`` ``:``)."""

    kind: str
    """A key of the field table, ``sep`` (a literal separator), ``component`` (ends
    in ``:``) or ``close`` (ends in ``]``, glog's ``file:line]``)."""
    open: str = ""
    close: str = ""

    def to_list(self) -> list[str]:
        return [self.kind, self.open, self.close]


@dataclass(frozen=True, slots=True)
class HeaderSpec:
    """What the detector learned about a source's header."""

    stamp: str | None
    """Shape name (a key of ``stamps.SHAPES``), or ``None`` for a header without a stamp."""
    frac: str = "."
    """Fraction separator style: ``.`` (``.`` or ``,``), ``:`` or ``""``."""
    zone: str = ""
    """``""``, ``attached`` (``Z``, ``+01:00``) or ``spaced`` (`` +0000``, `` UTC``)."""
    stamp_open: str = ""
    stamp_close: str = ""
    prefix: tuple[Field, ...] = ()
    """Whitespace-separated fields before the stamp."""
    fields: tuple[Field, ...] = ()
    """Fields after the stamp, up to where the message starts."""
    pri: bool = False
    """A syslog ``<PRI>`` leads the line."""
    pipes: bool = False
    """The fields after the stamp are separated by ``|``."""
    http_level: bool = False
    """The level is read off the HTTP status after a quoted request (access logs)."""
    spans: bool = False
    """Rust tracing spans may precede the component."""
    order_settled: bool = True
    """False while a numeric date's day/month order is a default no line has proved."""
    second_stamp: bool = False
    """The stamp was preferred over a less precise syslog stamp ahead of it (HAProxy via
    syslog): the learned layout is then tried before the named syslog layouts."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (what the source's state row stores)."""
        return {
            "v": SPEC_VERSION,
            "stamp": self.stamp,
            "frac": self.frac,
            "zone": self.zone,
            "open": self.stamp_open,
            "close": self.stamp_close,
            "prefix": [f.to_list() for f in self.prefix],
            "fields": [f.to_list() for f in self.fields],
            "flags": [
                name
                for name in ("pri", "pipes", "http_level", "spans", "order_settled", "second_stamp")
                if getattr(self, name)
            ],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HeaderSpec:
        """The inverse of :meth:`to_dict`; raises ``ValueError`` on anything it did not write."""
        if data.get("v") != SPEC_VERSION:
            raise ValueError(f"header spec version {data.get('v')!r}")
        flags = set(data.get("flags", ()))
        spec = cls(
            stamp=data["stamp"],
            frac=str(data["frac"]),
            zone=str(data["zone"]),
            stamp_open=str(data["open"]),
            stamp_close=str(data["close"]),
            prefix=tuple(Field(*map(str, f)) for f in data["prefix"]),
            fields=tuple(Field(*map(str, f)) for f in data["fields"]),
            **{name: name in flags for name in _FLAGS},
        )
        header_pattern(spec)  # validates: unknown kinds or shapes raise here
        return spec

    def with_stamp(self, stamp: str) -> HeaderSpec:
        """The same header with another stamp shape (a day/month order proved late)."""
        return replace(self, stamp=stamp, order_settled=True)

    @property
    def time_only(self) -> bool:
        return self.stamp is not None and SHAPES[self.stamp].time_only

    @property
    def has_level(self) -> bool:
        """A field (or the stamp, for glog) gives the level."""
        kinds = {f.kind for f in (*self.prefix, *self.fields)}
        return bool(kinds & {"level", "letter", "symbol"}) or self.stamp == "glog"


_FLAGS: Final = ("pri", "pipes", "http_level", "spans", "order_settled", "second_stamp")


def _field_regex(field: Field, *, component: bool, pipe: bool) -> str:
    kind = field.kind
    if kind == "sep":
        return re.escape(field.open)
    if kind == "date" and field.open == "stamp":  # the date of a time-of-day stamp
        return r"(?P<year>\d{4}[-/.]\d\d?[-/.]\d\d?)"
    if kind == "stamp2":  # another stamp on the line: matched, not read
        return re.sub(r"\(\?P<\w+>", "(?:", stamp_fragment(field.open, ".", ""))
    if kind == "component":
        # `tag:`, `prog[pid]:`, `prog[pid] (detail):` (macOS), `tag   :` (logcat pads tags)
        body = (
            r"(?P<component>[^ \t]{1,256}?)(?:\[[^\]\n]{0,64}\])?"
            r"(?: \([^()\n]{0,256}\))?[ \t]{0,64}:"
        )
    elif kind == "close":
        body = r"(?P<component>[^ \t\]]{1,256})\]"
    elif pipe:
        body = r"(?P<component>[^|\n]{1,256}?)" if component else r"[^|\n]{0,256}?"
        if kind in ("level", "letter", "symbol"):
            body = _FIELD_REGEX[kind]
        return body
    elif component:
        body = r"(?P<component>[^ \t]{1,256})"
    else:
        body = _FIELD_REGEX[kind]
    return re.escape(field.open) + body + re.escape(field.close)


def _component_index(spec: HeaderSpec) -> int | None:
    """The post-stamp field that is the component: one ending in ``:``/``]``, else the last word."""
    fields = spec.fields
    for i, f in enumerate(fields):
        if f.kind in ("component", "close"):
            return i
    for i in range(len(fields) - 1, -1, -1):
        if fields[i].kind == "word":
            return i
    return None


def _stamp(spec: HeaderSpec) -> str:
    if spec.stamp is None:
        return ""
    return (
        re.escape(spec.stamp_open)
        + stamp_fragment(spec.stamp, spec.frac, spec.zone)
        + re.escape(spec.stamp_close)
    )


def _head(spec: HeaderSpec, *, loose: bool = False) -> str:
    """Everything up to and including the stamp.

    ``loose``: when no prefix field is read (no level before the stamp), the
    stamp may sit a few tokens earlier or later than learned, as in a line
    whose node or component field is missing or holds a space.
    """
    parts = [r"<(?P<pri>\d{1,3})>"] if spec.pri else []
    read = any(f.kind == "level" or f.open == "stamp" for f in spec.prefix)
    if loose and spec.prefix and not read:
        tokens = len(spec.prefix) + 2 + 3 * sum(f.kind == "stamp2" for f in spec.prefix)
        parts.append(rf"(?:[^ \t]{{1,256}}[ \t]+){{0,{tokens}}}?")
    else:
        for f in spec.prefix:
            parts.append(_field_regex(f, component=False, pipe=False) + r"[ \t]+")
    parts.append(_stamp(spec))
    return "".join(parts)


def _tail_fields(spec: HeaderSpec, *, loose: bool = False) -> list[str]:
    """The post-stamp fields, each with the separator that leads it.

    ``loose``: a ``component:`` may hold blanks (``syslogd 1.4.1:``), up to the first colon.
    """
    comp = _component_index(spec)
    lead = r"[ \t]*\|[ \t]*" if spec.pipes else r"[ \t]+"
    out = []
    for i, f in enumerate(spec.fields):
        regex = _field_regex(f, component=i == comp, pipe=spec.pipes)
        before_sep = i + 1 < len(spec.fields) and spec.fields[i + 1].kind == "sep"
        if f.kind == "word" and before_sep and not spec.pipes:
            # A program name before ` - ` may hold a blank (`app.exe *64 - ...`).
            regex = f"(?P<component>{_UP_TO_SEP})" if i == comp else _UP_TO_SEP
        if f.kind == "component" and loose:
            regex = r"(?P<component>[^ \t:][^:\n]{0,63}?)(?:\[[^\]\n]{0,64}\])?:"
        if f.kind == "component" and spec.spans:
            regex = _SPANS + regex
        first = i == 0 and spec.stamp is None and not spec.prefix and not spec.pri
        out.append(("" if first else lead) + regex)
    return out


def header_pattern(spec: HeaderSpec) -> str:
    """The anchored layout regex of ``spec`` (RegexLayout group names, one ``message``)."""
    end = r"[ \t]*\|[ \t]*" if spec.pipes else r"(?:[ \t]+|$)"
    if not spec.fields and spec.stamp is not None and spec.pipes:
        end = r"[ \t]*\|?[ \t]*"
    status = _HTTP_STATUS if spec.http_level and not spec.has_level else ""
    pattern = _head(spec) + "".join(_tail_fields(spec)) + end + status + "(?P<message>.*)"
    re.compile(pattern)
    return pattern


def loose_pattern(spec: HeaderSpec) -> str:
    """The fallback for lines that miss a field: as many leading fields as fit, then the message.

    Nested optional groups (``(?:F0(?:F1)?)?``) keep the fields in order, so a
    line whose third field differs still gets its stamp, level and first two
    fields right; only the message then starts early.
    """
    tail = ""
    for regex in reversed(_tail_fields(spec, loose=True)):
        tail = f"(?:{regex}{tail})?"
    status = _HTTP_STATUS if spec.http_level and not spec.has_level else ""
    sep = r"[ \t]*\|?[ \t]*" if spec.pipes else r"[ \t]*"
    return _head(spec, loose=True) + tail + sep + status + "(?P<message>.*)"


def level_lookup(spec: HeaderSpec) -> dict[str, str]:
    """Extra level spellings the spec's level field can hold (Redis symbols, HTTP statuses)."""
    kinds = {f.kind for f in (*spec.prefix, *spec.fields)}
    extra: dict[str, str] = {}
    if "symbol" in kinds:
        extra.update(REDIS_LEVELS)
    if spec.http_level and not spec.has_level:
        extra.update(HTTP_LEVELS)
    return extra


def is_trivial(spec: HeaderSpec) -> bool:
    """A stamp at the line start plus at most a level: what the named ``iso`` layout reads."""
    return (
        spec.stamp == "ymd-"
        and not spec.prefix
        and not spec.pri
        and not spec.pipes
        and not spec.http_level
        and spec.stamp_open in ("", "[")
        and spec.stamp_close in ("", "]")
        and all(f.kind == "level" and f.open in ("", "[", "(") for f in spec.fields)
    )
