"""JSON-per-line logs (structlog, bunyan/pino, logstash, zap, python-json-logger...).

There is no single schema, so the common spellings of each field are tried in
order; the first present key wins.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from operator import methodcaller
from typing import Final, cast

import orjson

from loglytics.parsing.layouts import Layout
from loglytics.parsing.levels import guess_level, level_from_number, normalise_level
from loglytics.parsing.model import ParsedColumns, ParsedLine
from loglytics.parsing.timestamps import (
    TimestampCache,
    epoch_from_number,
    parse_timestamp,
    parse_timestamps,
)

TIMESTAMP_KEYS: Final = ("timestamp", "ts", "time", "@timestamp", "datetime", "date", "t")
LEVEL_KEYS: Final = (
    "level",
    "severity",
    "lvl",
    "levelname",
    "log.level",
    "loglevel",
    "severity_text",
    "s",  # MongoDB 4.4+: {"s":"I","c":"NETWORK",...}
)
COMPONENT_KEYS: Final = (
    "logger",
    "log.logger",
    "component",
    "service",
    "logger_name",
    "name",
    "module",
    "source",
    "c",
)
MESSAGE_KEYS: Final = ("message", "msg", "@message", "event", "text", "log")


def _first(obj: dict[str, object], keys: tuple[str, ...]) -> object:
    for key in keys:
        value = obj.get(key)
        if value is not None:
            return value
    return None


def _first_column(objs: list[dict[str, object]], keys: tuple[str, ...]) -> list[object]:
    """:func:`_first` for every object, one key at a time down the whole column.

    Lines of one stream share their spelling, so the first key that is present
    is usually present in all of them, and this is one C-level ``map``.
    """
    column: list[object] | None = None
    for key in keys:
        values = list(map(methodcaller("get", key), objs))
        if column is None or column.count(None) == len(column):
            column = values
        else:
            column = [a if a is not None else b for a, b in zip(column, values, strict=True)]
        if None not in column:
            break
    return column if column is not None else [None] * len(objs)


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
        if message.endswith("\n"):  # Docker's json-file keeps each line's newline in "log"
            message = message.rstrip("\r\n")

        raw_ts = _first(obj, TIMESTAMP_KEYS)
        if isinstance(raw_ts, dict):  # extended JSON: {"$date": "2026-..."} (MongoDB)
            raw_ts = raw_ts.get("$date")
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

    def parse_columns(self, lines: Sequence[str], cache: TimestampCache) -> ParsedColumns | None:
        """The batch form of :meth:`parse`, for the common case: string fields throughout.

        orjson decodes each line (it agrees with ``json`` on what it accepts,
        except that it refuses NaN, lone surrogates and reads integers past 64
        bits as floats); only string fields are taken from its objects, so those
        differences cannot show, and any other field type falls back to
        :meth:`parse` line by line.
        """
        if not lines:
            return None
        braced = all(map(methodcaller("startswith", "{"), lines)) and all(
            map(methodcaller("endswith", "}"), lines)
        )
        if not braced:
            return None  # parse() would not take such a line (or only once right-stripped)
        try:
            objs = list(map(orjson.loads, lines))
        except orjson.JSONDecodeError:
            return None
        if set(map(type, objs)) != {dict}:
            return None
        messages = _first_column(objs, MESSAGE_KEYS)
        stamps = _first_column(objs, TIMESTAMP_KEYS)
        levels = _first_column(objs, LEVEL_KEYS)
        if set(map(type, messages)) | set(map(type, stamps)) | set(map(type, levels)) != {str}:
            return None
        texts = cast("list[str]", messages)  # all str: checked just above
        if any(map(methodcaller("endswith", "\n"), texts)):
            texts = [m.rstrip("\r\n") if m.endswith("\n") else m for m in texts]
        names = {raw: normalise_level(raw) for raw in dict.fromkeys(levels)}  # type: ignore[arg-type]
        return ParsedColumns(
            parse_timestamps(stamps, cache),  # type: ignore[arg-type]
            list(map(names.__getitem__, levels)),
            texts,
        )
