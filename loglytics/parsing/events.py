"""EventParser: a source's line parser and multi-line joiner, with state that survives restarts.

What ingest and ``loglytics parse`` use per source. Lines go through the
:class:`LineParser`; the :class:`Joiner` groups them into events; an event
that may still continue (a trace in progress, or a last WARN/ERROR line that a
trace may follow) waits for the source's next message, up to
``JoinConfig.flush_after`` seconds, so that a trace split over two Kafka
messages still joins. Everything it waits with is in :meth:`state`.

The steady state costs nothing extra: when a whole message fits the source's
layout in one batch match, every line starts an event and only the last line
is looked at.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from loglytics.parsing.learned import AUTO
from loglytics.parsing.levels import normalise_level
from loglytics.parsing.model import ParsedColumns, ParsedEvent, ParsedLine
from loglytics.parsing.multiline import (
    JoinConfig,
    Joiner,
    OpenEvent,
    level_line,
    may_open_block,
    trace_identity,
)
from loglytics.parsing.parser import LineParser

STATE_VERSION: Final = 1


class EventParser:
    """One per source: lines in, events out (see the module docstring)."""

    __slots__ = ("_joins", "_open", "joiner", "parser")

    def __init__(self, parser: LineParser | None = None, config: JoinConfig | None = None) -> None:
        self.parser = parser if parser is not None else LineParser()
        self.joiner = Joiner(config if config is not None else JoinConfig())
        self._open: OpenEvent | None = None
        self._joins = False
        """Some event of this source has spanned lines."""

    @property
    def held(self) -> bool:
        """An event is waiting for the source's next message."""
        return self._open is not None

    @property
    def stateful(self) -> bool:
        """Its state holds what detection alone would not rebuild after a restart.

        A learned header, an event held for the next message, or the knowledge
        that this source writes multi-line events; a named layout is found
        again on the first lines, so a parser with nothing else is not kept.
        """
        return self._open is not None or self._joins or self.parser.format == AUTO

    def parse(self, lines: Sequence[str], arrival: float) -> list[ParsedEvent]:
        """The events of one message's lines, in order (the last may wait: see :meth:`flush`)."""
        self.parser.set_arrival(arrival)
        stripped = [line.rstrip() for line in lines]
        return self._join(stripped, self.parser.parse_many(stripped), arrival)

    def _join(
        self, stripped: Sequence[str], parsed_lines: Sequence[ParsedLine], arrival: float
    ) -> list[ParsedEvent]:
        """Group parsed lines into events (see :class:`Joiner`); the last may be held."""
        joiner = self.joiner
        out = self._due(arrival)
        event = self._open
        if event is not None:
            event.origin = -1  # it began in an earlier call
        for index, (line, parsed) in enumerate(zip(stripped, parsed_lines, strict=True)):
            header = parsed.format != "raw"
            may_join = event is not None and (not header or event.mode == "json")
            if may_join and joiner.continues(event, line, header=header):
                assert event is not None
                if joiner.fits(event, line):
                    joiner.add(event, line)
                    continue
            if event is not None:
                out.append(self._close(event))
            mode, depth = joiner.start_mode(line)
            event = OpenEvent([line], arrival, mode, depth, len(line), header, parsed, index)
        self._open = None
        if event is not None:
            if event.waits(joins=self._joins):
                self._open = event
            else:
                out.append(self._close(event))
        return out

    def parse_columns(self, lines: Sequence[str], arrival: float) -> ParsedColumns:
        """:meth:`parse` as columns; one batch match when the whole message fits the layout."""
        parser = self.parser
        held = self._open
        columns = None
        if held is None or not (held.mode == "json" and held.depth > 0):
            parser.set_arrival(arrival)
            columns = parser.parse_columns(lines)
        if columns is None:
            parser.set_arrival(arrival)
            stripped = [line.rstrip() for line in lines]
            rows = parser.parse_many(stripped)
            if held is not None or not _one_event_each(stripped, rows):
                return as_columns(self._join(stripped, rows, arrival))
            columns = ParsedColumns(
                [r.timestamp for r in rows], [r.level for r in rows], [r.message for r in rows]
            )
        self._open = None
        self._hold_last(columns, lines, arrival)
        if held is not None:
            _prepend(columns, self._close(held))
        return columns

    def _hold_last(self, columns: ParsedColumns, lines: Sequence[str], arrival: float) -> None:
        """The last of a batch of header lines waits when :meth:`OpenEvent.waits` says so."""
        if not self._joins or not columns.levels:
            return
        last = lines[-1].rstrip()
        first = ParsedLine(
            columns.timestamps[-1],
            columns.levels[-1],
            None,
            columns.messages[-1],
            self.parser.format or "",
        )
        event = OpenEvent([last], arrival, *self.joiner.start_mode(last), len(last), True, first)
        if event.waits(joins=True):
            del columns.timestamps[-1], columns.levels[-1], columns.messages[-1]
            self._open = event

    def flush(self, now: float | None = None) -> list[ParsedEvent]:
        """The waiting event, if its time is up at ``now`` (always, with ``None``: end of input)."""
        held = self._open
        if held is None or (now is not None and now - held.since < self.joiner.config.flush_after):
            return []
        self._open = None
        return [self._close(held)]

    def _due(self, arrival: float) -> list[ParsedEvent]:
        return self.flush(arrival)

    def _close(self, event: OpenEvent) -> ParsedEvent:
        """The event's fields: its header line's, a JUL level line's, and a trace's identity."""
        lines = event.lines
        first = event.first if event.first is not None else self.parser.parse(lines[0])
        self._joins = self._joins or len(lines) > 1
        if len(lines) == 1:
            return ParsedEvent(
                first.timestamp,
                first.level,
                first.component,
                first.message,
                first.format,
                origin=event.origin,
            )
        cap = self.joiner.config.max_text
        if event.mode == "json":
            whole = self.parser.parse_json("\n".join(lines))
            if whole is not None:
                text = "\n".join(lines)[:cap]
                return ParsedEvent(
                    whole.timestamp,
                    whole.level,
                    whole.component,
                    whole.message,
                    "json",
                    len(lines),
                    text,
                    origin=event.origin,
                )
        level, component, message = first.level, first.component, first.message
        rest = lines[1:]
        if level == "UNKNOWN" and (found := level_line(rest[0])) is not None:
            level = normalise_level(found[0])
            component = " ".join(filter(None, (component, message))) or None
            message, rest = found[1], rest[1:]
        identity = trace_identity(rest if event.header else lines)
        text = "\n".join([message, *rest])[:cap] if event.header else "\n".join(lines)[:cap]
        return ParsedEvent(
            first.timestamp,
            level,
            component,
            message,
            first.format,
            len(lines),
            text,
            identity,
            event.origin,
        )

    def state(self) -> dict[str, Any]:
        """JSON-ready: the line parser's detection state and the event waiting, if any."""
        out: dict[str, Any] = {"v": STATE_VERSION, "parser": self.parser.state()}
        if self._joins:
            out["joins"] = True
        if self._open is not None:
            out["held"] = self._open.to_dict()
        return out

    @classmethod
    def from_state(
        cls,
        state: dict[str, Any] | None,
        format: str | None = None,
        config: JoinConfig | None = None,
    ) -> EventParser:
        """Continue a source from :meth:`state`; a state it cannot read starts it afresh."""
        events = cls(LineParser.from_state((state or {}).get("parser"), format), config)
        held = (state or {}).get("held")
        events._joins = bool((state or {}).get("joins"))
        if held and (state or {}).get("v") == STATE_VERSION:
            try:
                events._open = OpenEvent.from_dict(held)
            except (KeyError, TypeError, ValueError):
                events._open = None
        return events


def _prepend(columns: ParsedColumns, event: ParsedEvent) -> None:
    """Put a held event before a batch's columns (texts and line counts if it joined lines)."""
    n = len(columns.messages)
    columns.timestamps.insert(0, event.timestamp)
    columns.levels.insert(0, event.level)
    columns.messages.insert(0, event.mined_message)
    if event.lines > 1:
        columns.texts = [event.text or event.message, *columns.messages[1:]]
        columns.lines = [event.lines, *([1] * n)]


def as_columns(events: Sequence[ParsedEvent]) -> ParsedColumns:
    """Events as columns; ``texts`` and ``lines`` only when some event joined several lines."""
    columns = ParsedColumns(
        [e.timestamp for e in events], [e.level for e in events], [e.mined_message for e in events]
    )
    if any(e.lines > 1 for e in events):
        columns.texts = [e.text if e.text is not None else e.mined_message for e in events]
        columns.lines = [e.lines for e in events]
    return columns


def _one_event_each(lines: Sequence[str], rows: Sequence[ParsedLine]) -> bool:
    """Every line has the header and none opens a block: no line can join another."""
    return all(row.format != "raw" for row in rows) and not any(map(may_open_block, lines))
