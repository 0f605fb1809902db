"""Level normalisation.

Sources spell levels a dozen ways (``warning``, ``WARN``, ``W``, syslog ``err``,
Java ``SEVERE``, numeric pino levels); downstream code should only ever see the
eight canonical names, so every layout funnels its raw level through here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from types import MappingProxyType
from typing import Final

CANONICAL_LEVELS: Final = (
    "TRACE",
    "DEBUG",
    "INFO",
    "NOTICE",
    "WARN",
    "ERROR",
    "CRITICAL",
    "FATAL",
)
UNKNOWN: Final = "UNKNOWN"

_ALIASES: Final = MappingProxyType(
    {
        "TRACE": "TRACE",
        "FINEST": "TRACE",
        "FINER": "TRACE",
        "VERBOSE": "TRACE",
        "V": "TRACE",
        "TRAC": "TRACE",
        "DEBUG": "DEBUG",
        "DBG": "DEBUG",
        "FINE": "DEBUG",
        "CONFIG": "DEBUG",
        "D": "DEBUG",
        "DEBU": "DEBUG",
        "INFO": "INFO",
        "INFORMATION": "INFO",
        "INFORMATIONAL": "INFO",
        "INF": "INFO",
        "I": "INFO",
        # PostgreSQL's LOG and its companion lines, MySQL's Note and System.
        "LOG": "INFO",
        "NOTE": "INFO",
        "SYSTEM": "INFO",
        "DETAIL": "INFO",
        "HINT": "INFO",
        "STATEMENT": "INFO",
        "CONTEXT": "INFO",
        "QUERY": "INFO",
        "NOTICE": "NOTICE",
        "N": "NOTICE",
        "WARN": "WARN",
        "WARNING": "WARN",
        "WRN": "WARN",
        "W": "WARN",
        "ERROR": "ERROR",
        "ERR": "ERROR",
        "E": "ERROR",
        "ERRO": "ERROR",
        "EROR": "ERROR",
        "SEVERE": "ERROR",
        "FAILURE": "ERROR",
        "CRITICAL": "CRITICAL",
        "CRIT": "CRITICAL",
        "ALERT": "CRITICAL",
        "C": "CRITICAL",
        "FATAL": "FATAL",
        "EMERG": "FATAL",
        "EMERGENCY": "FATAL",
        "PANIC": "FATAL",
        "F": "FATAL",
        "FATA": "FATAL",
        "PANI": "FATAL",
        "A": "FATAL",  # Android's Assert
        # Apache httpd 2.4's trace1..trace8; PostgreSQL's DEBUG1..5 and MongoDB's D1..D5.
        **{f"TRACE{i}": "TRACE" for i in range(1, 9)},
        **{f"DEBUG{i}": "DEBUG" for i in range(1, 6)},
        **{f"D{i}": "DEBUG" for i in range(1, 6)},
    }
)

# Exact-spelling table for the hot path: one dict hit for the common spellings
# (upper, lower, capitalised) instead of strip()+upper()+lookup per line.
LEVEL_LOOKUP: Final = MappingProxyType(
    {
        variant: canon
        for alias, canon in _ALIASES.items()
        for variant in (alias, alias.lower(), alias.capitalize())
    }
)

# Syslog severities (RFC 5424 section 6.2.1), indexed by PRI & 7.
SYSLOG_SEVERITY: Final = (
    "FATAL",
    "CRITICAL",
    "CRITICAL",
    "ERROR",
    "WARN",
    "NOTICE",
    "INFO",
    "DEBUG",
)

# Bunyan/pino numeric levels, the usual numeric form in JSON logs.
_NUMERIC: Final = ((60, "FATAL"), (50, "ERROR"), (40, "WARN"), (30, "INFO"), (20, "DEBUG"))

# Only the head of a line is scanned: level words far into a long line are
# message text, and it bounds the cost on pathological lines.
_GUESS_SPAN: Final = 512
_GUESS_WORDS: Final = (
    "FATAL",
    "PANIC",
    "EMERG",
    "CRITICAL",
    "CRIT",
    "SEVERE",
    "ERROR",
    "ERR",
    "WARNING",
    "WARN",
    "NOTICE",
    "INFO",
    "DEBUG",
    "TRACE",
)


def _guess_pattern(words: Sequence[str]) -> str:
    """Regex for whole level words in upper, lower or capitalised spelling.

    Branching on the first letter (and checking the word boundary *after* it via
    a look-behind) lets ``re`` skip quickly to candidate letters; a plain
    ``\b(?:...)`` with IGNORECASE is about five times slower on typical lines.
    """
    by_first: dict[str, set[str]] = {}
    for word in words:
        for variant in (word, word.lower(), word.capitalize()):
            by_first.setdefault(variant[0], set()).add(variant[1:])
    branches = [
        first + r"(?<=\b\w)(?:" + "|".join(sorted(rests, key=lambda r: (-len(r), r))) + ")"
        for first, rests in sorted(by_first.items())
    ]
    return "(?:" + "|".join(branches) + r")\b"


_GUESS_RE: Final = re.compile(_guess_pattern(_GUESS_WORDS))


def normalise_level(s: str) -> str:
    """Map any spelling of a level to its canonical name, or ``"UNKNOWN"``.

    Accepts surrounding whitespace/brackets and any case, so callers can pass a
    raw field without cleaning it first.
    """
    hit = LEVEL_LOOKUP.get(s)
    if hit is not None:
        return hit
    key = s.strip().strip("[]<>():").upper()
    return _ALIASES.get(key, UNKNOWN)


def level_from_number(n: float) -> str:
    """Map a bunyan/pino style numeric level (10..60) to a canonical name."""
    for floor, name in _NUMERIC:
        if n >= floor:
            return name
    return "TRACE" if n >= 10 else UNKNOWN


def guess_level(text: str) -> str:
    """Best-effort level for lines whose layout has no level field.

    A single regex search for the first level-like word: cheap, and the first
    such word is usually the level column of an unrecognised layout.
    """
    m = _GUESS_RE.search(text, 0, _GUESS_SPAN)
    if m is None:
        return UNKNOWN
    return _ALIASES[m.group().upper()]


LEVEL_WORDS: Final = frozenset(_ALIASES)
"""Every upper-case spelling :func:`normalise_level` knows (single letters included)."""
