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
from typing import cast

import orjson

from loglytics.mining import MinedBatch, MinerConfig, TemplateMiner, TemplateState
from loglytics.parsing import LineParser, ParsedColumns, normalise_level
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
    """Parsing and mining state of one tenant/source (one per key, owned by one worker)."""

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
    ) -> None:
        self.tenant = tenant
        self.source = source
        self.max_line_chars = max_line_bytes
        self.future_tolerance = future_tolerance
        self.parsers: dict[str | None, LineParser] = {}
        self.miner = TemplateMiner(miner_config)
        self.miner.restore(templates, activity)

    def _parser(self, fmt: str | None) -> LineParser:
        parser = self.parsers.get(fmt)
        if parser is None:
            try:
                parser = LineParser(format=fmt)
            except (KeyError, ValueError):
                parser = LineParser()
            self.parsers[fmt] = parser
        return parser

    def process_batch(self, decoded: Decoded, arrival_ts: float) -> MinedBatch:
        """Parse and mine a message's lines into columns (the hot path; see `MinedBatch`)."""
        columns, stamps, flagged = self._parse(decoded, arrival_ts, bulk=True)
        return MinedBatch(
            ts=stamps,
            levels=columns.levels,
            messages=columns.messages,
            mined=self.miner.mine_columns(columns.messages, arrival_ts),
            flagged=sorted(flagged),
        )

    def _parse(
        self, decoded: Decoded, arrival_ts: float, *, bulk: bool
    ) -> tuple[ParsedColumns, list[float], set[int]]:
        """A message's lines and events as columns, their settled event times, the flagged lines.

        The checks that rarely fire (over-long lines, replacement characters,
        implausible timestamps) are first made once for the whole message with
        C-level builtins; only a message that trips one is checked line by line.
        """
        limit = self.max_line_chars
        lines = decoded.lines
        flagged: set[int] = set()
        columns = ParsedColumns([], [], [])
        if lines:
            if max(map(len, lines)) > limit:
                flagged.update(i for i, ln in enumerate(lines) if len(ln) > limit)
                lines = [ln if len(ln) <= limit else ln[:limit] for ln in lines]
            parser = self._parser(decoded.format)
            parsed = parser.parse_columns(lines) if bulk else None
            if parsed is None:
                rows = parser.parse_many(lines)
                parsed = ParsedColumns(
                    [p.timestamp for p in rows], [p.level for p in rows], [p.message for p in rows]
                )
            columns = parsed
        if decoded.events:
            events = decoded.events
            columns.timestamps.extend(e.timestamp for e in events)
            columns.levels.extend(normalise_level(e.level or "") for e in events)
            columns.messages.extend(e.message for e in events)
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
