"""From a raw Kafka message to mined lines: decoding, validation, parsing, mining.

Kept free of Faust so that it can be unit-tested and fuzzed directly: the agent
only moves messages in and state out. Every way a message can be bad ends in
a `Rejected` (which becomes a dead letter with the stage and reason) or in a
line accepted with a flag; nothing here raises on input.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import orjson

from loglytics.ingest.state import SourceState
from loglytics.mining import MinedBatch, MinerConfig, TemplateMiner, TemplateState
from loglytics.parsing import FORMATS, ParsedColumns, normalise_level
from loglytics.parsing.events import EventParser, as_columns
from loglytics.parsing.learned import AUTO
from loglytics.parsing.model import ParsedEvent
from loglytics.parsing.multiline import JoinConfig
from loglytics.schemas import BatchEvent, DecodeError, LogBatch, LogEvent
from loglytics.schemas.logs import ID_PATTERN

_ID = re.compile(ID_PATTERN)
EARLIEST_PLAUSIBLE_TS = 315_532_800.0  # 1980-01-01: older stamps are parse accidents


@dataclass(frozen=True, slots=True)
class Rejected:
    """A message that cannot be ingested; `reason` is what the dead letter says."""

    reason: str


@dataclass(slots=True)
class Decoded:
    """A valid message: its tenant/source and its lines (raw text or pre-structured)."""

    tenant: str
    source: str
    format: str | None = None
    lines: list[str] = field(default_factory=list)
    events: list[BatchEvent] = field(default_factory=list)


def _header(
    headers: Mapping[str, bytes] | Sequence[tuple[str, bytes]] | None, name: str
) -> str | None:
    if not headers:
        return None
    items = headers.items() if isinstance(headers, Mapping) else headers
    for key, value in items:
        if key.lower() == name:
            try:
                return value.decode("utf-8") if isinstance(value, bytes) else str(value)
            except UnicodeDecodeError:
                return None
    return None


def decode_message(
    key: bytes | None,
    value: bytes | None,
    headers: Mapping[str, bytes] | Sequence[tuple[str, bytes]] | None = None,
) -> Decoded | Rejected:
    """Accepts a LogBatch, a LogEvent (JSON), or text lines with tenant/source in headers."""
    if not value:
        return Rejected("empty message")
    tenant = _header(headers, "tenant")
    source = _header(headers, "source")
    content_type = _header(headers, "content-type") or ""
    is_text = content_type.startswith("text/") or (tenant is not None and not content_type)
    if not is_text and value[:1] in (b"{", b"[", b" ", b"\n") and value.lstrip()[:1] == b"{":
        return _decode_json(value)
    if not is_text and value.lstrip()[:1] == b"[":
        return Rejected("a JSON array is not a LogBatch or LogEvent; send a LogBatch")
    if tenant is None and key:
        # Text without headers: fall back to the `tenant/source` message key.
        parts = key.decode("utf-8", "replace").split("/", 1)
        if len(parts) == 2:
            tenant, source = parts
    if not tenant:
        return Rejected("text message without a tenant header (or a tenant/source key)")
    if not _ID.match(tenant):
        return Rejected(f"invalid tenant id {tenant[:80]!r}")
    source = source or "default"
    if not _ID.match(source):
        return Rejected(f"invalid source id {source[:80]!r}")
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        # Keep the lines: undecodable bytes are replaced and the lines flagged.
        text = value.decode("utf-8", "replace")
    lines = [ln for ln in text.replace("\r\n", "\n").split("\n") if ln]
    if not lines:
        return Rejected("text message with no lines")
    return Decoded(tenant=tenant, source=source, format=_header(headers, "format"), lines=lines)


def _decode_json(value: bytes) -> Decoded | Rejected:
    try:
        obj = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        return Rejected(f"invalid JSON: {exc}")
    if not isinstance(obj, dict):
        return Rejected("expected a JSON object")
    try:
        if "lines" in obj or "events" in obj:
            batch = LogBatch.from_obj(obj)
            if not batch.lines and not batch.events:
                return Rejected("LogBatch with no lines and no events")
            return Decoded(batch.tenant, batch.source, batch.format, batch.lines, batch.events)
        event = LogEvent.from_obj(obj)
    except DecodeError as exc:
        return Rejected(f"schema: {exc.reason}")
    return Decoded(
        event.tenant,
        event.source,
        None,
        [],
        [
            BatchEvent(
                message=event.message,
                timestamp=event.timestamp,
                level=event.level,
                component=event.component,
            )
        ],
    )


class SourcePipeline:
    """Parsing and mining state of one tenant/source (one per key, owned by one worker).

    ``parsing`` is what :meth:`parsing_state` returned before a restart (the
    ``parsing`` field of the source's state row): the header each parser
    learned and any event held for the source's next message. Without it
    (an older row) detection starts over, as it always did.
    """

    def __init__(
        self,
        tenant: str,
        source: str,
        *,
        max_line_bytes: int = 65_536,
        future_tolerance: float = 300.0,
        miner_config: MinerConfig | None = None,
        templates: Iterable[TemplateState] = (),
        activity: Mapping[str, Sequence[float]] | None = None,
        parsing: Mapping[str, Any] | None = None,
        join: JoinConfig | None = None,
    ) -> None:
        self.tenant = tenant
        self.source = source
        self.max_line_chars = max_line_bytes
        self.future_tolerance = future_tolerance
        self.join = join if join is not None else JoinConfig()
        self.parsers: dict[str | None, EventParser] = {}
        self._saved_parsing: dict[str, Any] = dict(parsing) if isinstance(parsing, Mapping) else {}
        self.miner = TemplateMiner(miner_config)
        self.miner.restore(templates, activity)

    def _parser(self, fmt: str | None) -> EventParser:
        """The parser of a forced format (``None``: detection); an unknown name detects."""
        key = fmt if fmt in FORMATS or fmt == AUTO else None
        parser = self.parsers.get(key)
        if parser is None:
            saved = self._saved_parsing.get(key or "")
            parser = EventParser.from_state(
                saved if isinstance(saved, dict) else None, key, self.join
            )
            self.parsers[key] = parser
        return parser

    def parsing_state(self) -> dict[str, Any] | None:
        """Each parser's learned header and held event, by format (``""``: detection).

        ``None`` when no parser holds anything detection would not find again
        (a named layout, nothing held), so most sources' rows carry nothing.
        """
        out = dict(self._saved_parsing)
        for key, parser in self.parsers.items():
            if parser.stateful:
                out[key or ""] = parser.state()
            else:
                out.pop(key or "", None)
        return out or None

    def keep_parsing(self, state: SourceState) -> None:
        """Write :meth:`parsing_state` into the source's state row (or drop a stale one)."""
        parsing = self.parsing_state()
        if parsing is not None:
            state["parsing"] = parsing
        else:
            state.pop("parsing", None)

    def flush_held(self, now: float) -> MinedBatch | None:
        """The events held for continuation lines, mined: the source has gone quiet.

        ``now`` stands in for the arrival time of a held event without a stamp.
        """
        events = [event for parser in self.parsers.values() for event in parser.flush()]
        if not events:
            return None
        columns = as_columns(events)
        flagged: set[int] = set()
        arrival = now
        stamps = self._stamps(columns.timestamps, arrival, flagged)
        return MinedBatch(
            ts=stamps,
            levels=columns.levels,
            messages=columns.texts or columns.messages,
            mined=self.miner.mine_columns(columns.messages, arrival),
            flagged=sorted(flagged),
        )

    def process_batch(self, decoded: Decoded, arrival_ts: float) -> MinedBatch:
        """Parse and mine a message's lines into columns (the hot path; see `MinedBatch`)."""
        columns, stamps, flagged = self._parse(decoded, arrival_ts, bulk=True)
        return MinedBatch(
            ts=stamps,
            levels=columns.levels,
            messages=columns.texts or columns.messages,  # exemplars show a trace's whole text
            mined=self.miner.mine_columns(columns.messages, arrival_ts),
            flagged=sorted(flagged),
        )

    def _parse(
        self, decoded: Decoded, arrival_ts: float, *, bulk: bool
    ) -> tuple[ParsedColumns, list[float], set[int]]:
        """A message's events as columns, their settled event times, the flagged events.

        Raw lines go through the source's EventParser: one event per line, or
        one per record where lines continue one another (traces). The checks
        that rarely fire (over-long lines, replacement characters, implausible
        timestamps) are first made once for the whole message with C-level
        builtins; only a message that trips one is checked event by event.
        """
        limit = self.max_line_chars
        lines = decoded.lines
        flagged: set[int] = set()
        columns = ParsedColumns([], [], [])
        if lines:
            truncated: set[int] = set()
            if max(map(len, lines)) > limit:
                truncated = {i for i, ln in enumerate(lines) if len(ln) > limit}
                lines = [ln if len(ln) <= limit else ln[:limit] for ln in lines]
            parser = self._parser(decoded.format)
            if bulk and not truncated:
                columns = parser.parse_columns(lines, arrival_ts)
            else:
                events = parser.parse(lines, arrival_ts)
                columns = as_columns(events)
                flagged.update(_holding(events, truncated))
            if parser.parser.dates_assumed:  # stamps without a date: the arrival day stood in
                flagged.update(range(len(columns.messages)))
        if decoded.events:
            events_in = decoded.events
            columns.timestamps.extend(e.timestamp for e in events_in)
            columns.levels.extend(normalise_level(e.level or "") for e in events_in)
            columns.messages.extend(e.message for e in events_in)
            if columns.texts is not None:
                columns.texts.extend(e.message for e in events_in)
        stamps = self._stamps(columns.timestamps, arrival_ts, flagged)
        if "\ufffd" in "".join(columns.messages):
            flagged.update(i for i, msg in enumerate(columns.messages) if "\ufffd" in msg)
        return columns, stamps, flagged

    def _stamps(
        self, stamps: list[float | None], arrival_ts: float, flagged: set[int]
    ) -> list[float]:
        """Event times: missing ones take the arrival time, implausible ones too (flagged)."""
        latest = arrival_ts + self.future_tolerance
        if None not in stamps:
            plain = cast(list[float], stamps)
            # A sum is finite only when every term is (an overflow just takes the slow path).
            if (
                plain
                and math.isfinite(sum(plain))
                and min(plain) >= EARLIEST_PLAUSIBLE_TS
                and max(plain) <= latest
            ):
                return plain
        out: list[float] = []
        for i, ts in enumerate(stamps):
            if ts is None or not math.isfinite(ts):
                out.append(arrival_ts)
            elif ts > latest or ts < EARLIEST_PLAUSIBLE_TS:
                out.append(arrival_ts)
                flagged.add(i)
            else:
                out.append(ts)
        return out


def _holding(events: Sequence[ParsedEvent], lines: set[int]) -> list[int]:
    """Indices of the events that hold one of ``lines`` (line indices of this parse call)."""
    if not lines:
        return []
    return [
        i
        for i, event in enumerate(events)
        if event.origin >= 0 and any(event.origin + k in lines for k in range(event.lines))
    ]
