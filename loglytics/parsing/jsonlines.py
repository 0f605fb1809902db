"""JSON-per-line logs (structlog, bunyan/pino, logstash, zap, python-json-logger...).

There is no single schema, so the common spellings of each field are tried in
order; the first present key wins.
"""

from __future__ import annotations

import json
from typing import Final

from loglytics.parsing.layouts import Layout
from loglytics.parsing.levels import guess_level, level_from_number, normalise_level
from loglytics.parsing.model import ParsedLine
from loglytics.parsing.timestamps import TimestampCache, epoch_from_number, parse_timestamp

TIMESTAMP_KEYS: Final = ("timestamp", "ts", "time", "@timestamp", "datetime", "date", "t")
LEVEL_KEYS: Final = (
    "level",
    "severity",
    "lvl",
    "levelname",
    "log.level",
    "loglevel",
    "severity_text",
)
COMPONENT_KEYS: Final = (
    "logger",
    "component",
    "service",
    "logger_name",
    "name",
    "module",
    "source",
)
MESSAGE_KEYS: Final = ("message", "msg", "@message", "event", "text", "log")


def _first(obj: dict[str, object], keys: tuple[str, ...]) -> object:
    for key in keys:
        value = obj.get(key)
        if value is not None:
            return value
    return None


class JsonLayout(Layout):
    """One JSON object per line; anything else (arrays, bad JSON) does not match."""

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__("json")

    def parse(self, line: str, cache: TimestampCache) -> ParsedLine | None:
        """Decode the object and pick the well-known keys out of it."""
        if not line.startswith("{") or not line.endswith("}"):
            return None
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError):
            return None
        if not isinstance(obj, dict):
            return None
        raw_msg = _first(obj, MESSAGE_KEYS)
        message = raw_msg if isinstance(raw_msg, str) else line if raw_msg is None else str(raw_msg)

        raw_ts = _first(obj, TIMESTAMP_KEYS)
        timestamp: float | None = None
        if isinstance(raw_ts, str):
            timestamp = parse_timestamp(raw_ts, cache)
        elif isinstance(raw_ts, int | float) and not isinstance(raw_ts, bool):
            try:
                timestamp = epoch_from_number(float(raw_ts))
            except OverflowError:  # a 400-digit integer is not a time
                timestamp = None

        raw_level = _first(obj, LEVEL_KEYS)
        if isinstance(raw_level, str):
            level = normalise_level(raw_level)
        elif isinstance(raw_level, int | float) and not isinstance(raw_level, bool):
            level = level_from_number(raw_level) if abs(raw_level) < 1e9 else "UNKNOWN"
        else:
            level = guess_level(message)

        raw_comp = _first(obj, COMPONENT_KEYS)
        component = (
            None if raw_comp is None else raw_comp if isinstance(raw_comp, str) else str(raw_comp)
        )
        return ParsedLine(timestamp, level, component, message, self.name)
