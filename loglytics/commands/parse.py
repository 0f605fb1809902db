"""`loglytics parse [FILE] [--format NAME] [--json]`: the parser alone, as ingest runs it.

Raw lines come from FILE (or stdin), go through one source's
:class:`~loglytics.parsing.events.EventParser` in batches, as messages would,
and every event is printed in input order: one JSON object per event with
``--json`` (the parser's benchmark interface: ``timestamp``, ``level``,
``component``, ``message``, ``format``, ``lines``; keep these names stable),
otherwise a readable table.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Final, TextIO

import orjson

from loglytics.parsing import LineParser
from loglytics.parsing.events import EventParser
from loglytics.parsing.model import ParsedEvent

BATCH_LINES: Final = 500
"""Lines per parse call: what one shipped message holds (`loglytics send --batch-lines`)."""
TABLE_MESSAGE_CHARS: Final = 160


def event_record(event: ParsedEvent) -> dict[str, object]:
    """The JSON object of one event (the stable field names)."""
    return {
        "timestamp": event.timestamp,
        "level": event.level,
        "component": event.component,
        "message": event.message,
        "format": event.format,
        "lines": event.lines,
    }


def parse_stream(lines: Iterable[str], fmt: str | None, arrival: float) -> Iterator[ParsedEvent]:
    """Every event of ``lines``, in order; the last held one too (end of input flushes it)."""
    events = EventParser(LineParser(format=fmt, arrival=arrival))
    batch: list[str] = []
    for line in lines:
        batch.append(line.rstrip("\r\n"))
        if len(batch) >= BATCH_LINES:
            yield from events.parse(batch, arrival)
            batch = []
    if batch:
        yield from events.parse(batch, arrival)
    yield from events.flush()


def _stamp(ts: float | None) -> str:
    if ts is None:
        return "-"
    whole = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts))
    return f"{whole}.{round(ts % 1 * 1000) % 1000:03d}Z"


def _table_row(event: ParsedEvent) -> str:
    message = event.message.replace("\n", " ")
    if len(message) > TABLE_MESSAGE_CHARS:
        message = message[: TABLE_MESSAGE_CHARS - 1] + "…"
    component = event.component or "-"
    return (
        f"{_stamp(event.timestamp):24} {event.level:8} {event.format:12} {event.lines:>5}  "
        f"{component[:32]:32} {message}"
    )


def write_events(events: Iterable[ParsedEvent], out: TextIO, *, as_json: bool) -> int:
    """Print the events; returns how many there were."""
    count = 0
    if not as_json:
        out.write(f"{'TIME':24} {'LEVEL':8} {'FORMAT':12} {'LINES':>5}  {'COMPONENT':32} MESSAGE\n")
    for event in events:
        if as_json:
            out.write(orjson.dumps(event_record(event)).decode() + "\n")
        else:
            out.write(_table_row(event) + "\n")
        count += 1
    return count


def run(args: argparse.Namespace) -> int:
    """The command: exit code 2 for an unknown format or an unreadable file."""
    try:
        LineParser(format=args.format)
    except ValueError as exc:
        print(f"loglytics parse: {exc}", file=sys.stderr)
        return 2
    arrival = time.time()
    try:
        if args.file and args.file != "-":
            with open(args.file, encoding="utf-8", errors="replace", newline="") as fh:
                write_events(parse_stream(fh, args.format, arrival), sys.stdout, as_json=args.json)
        else:
            write_events(
                parse_stream(sys.stdin, args.format, arrival), sys.stdout, as_json=args.json
            )
    except BrokenPipeError:  # `loglytics parse ... | head`: the reader has all it wants
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except OSError as exc:
        print(f"loglytics parse: {exc}", file=sys.stderr)
        return 2
    return 0
