"""logfmt lines (``time=... level=info msg="started" port=8080``): Go's slog, logrus, Heroku.

The header fields are keyed rather than positional, so "what follows the
header" is the line without its time, level and logger pairs: the ``msg``
value unquoted, then the remaining pairs as they were written. Keeping those
pairs keeps their values in the message, where the miner finds the numbers
(``latency_ms=45``) that the window statistics fold.
"""

from __future__ import annotations

import re
from typing import Final

from loglytics.parsing.layouts import Layout
from loglytics.parsing.levels import (
    SYSLOG_SEVERITY,
    guess_level,
    level_from_number,
    normalise_level,
)
from loglytics.parsing.model import ParsedLine
from loglytics.parsing.timestamps import TimestampCache, parse_timestamp

_PAIR: Final = re.compile(r'([\w.@/-]{1,64})=("(?:[^"\\]|\\.){0,65536}"|[^\s"]*)(?:\s+|$)')
_TIME_KEYS: Final = ("time", "ts", "timestamp", "t", "@timestamp", "datetime")
_LEVEL_KEYS: Final = ("level", "lvl", "severity", "loglevel")
_MESSAGE_KEYS: Final = ("msg", "message")
_COMPONENT_KEYS: Final = ("logger", "component", "module", "service", "source")
_HEADER_KEYS: Final = frozenset((*_TIME_KEYS, *_LEVEL_KEYS, *_MESSAGE_KEYS, *_COMPONENT_KEYS))
MIN_PAIRS: Final = 2


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


def _level(raw: str) -> str:
    if raw.isdigit():
        n = int(raw)
        return SYSLOG_SEVERITY[n] if n < 8 else level_from_number(n)
    return normalise_level(raw)


class LogfmtLayout(Layout):
    """A line made only of ``key=value`` pairs, with at least a time, level or msg key."""

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__("logfmt")

    def parse(self, line: str, cache: TimestampCache) -> ParsedLine | None:
        """Split the pairs; ``None`` unless the whole line is pairs and some are header keys."""
        if "=" not in line[:80]:
            return None
        pairs: list[tuple[str, str, str]] = []
        pos = 0
        for m in _PAIR.finditer(line):
            if m.start() != pos:
                return None
            pairs.append((m[1], m[2], m.group().rstrip()))
            pos = m.end()
        if pos != len(line) or len(pairs) < MIN_PAIRS:
            return None
        keyed = {key.lower(): value for key, value, _ in pairs}
        if not keyed.keys() & _HEADER_KEYS - set(_COMPONENT_KEYS):
            return None
        stamp = next((keyed[k] for k in _TIME_KEYS if k in keyed), None)
        timestamp = parse_timestamp(_unquote(stamp), cache) if stamp else None
        message = next((_unquote(keyed[k]) for k in _MESSAGE_KEYS if k in keyed), "")
        rest = " ".join(text for key, _, text in pairs if key.lower() not in _HEADER_KEYS)
        message = f"{message} {rest}".strip() if rest else message
        raw_level = next((_unquote(keyed[k]) for k in _LEVEL_KEYS if k in keyed), None)
        level = _level(raw_level) if raw_level else guess_level(message)
        component = next((_unquote(keyed[k]) for k in _COMPONENT_KEYS if k in keyed), None)
        return ParsedLine(timestamp, level, component, message, self.name)
