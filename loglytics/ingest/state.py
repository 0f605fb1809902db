"""The ingest stage's persisted state, named: one `SourceState` row per tenant/source.

Why plain dicts (TypedDicts, not classes): the whole row is written to the
changelog-backed ``ingest-state`` table once per batch (JSON, Faust's
default codec), so it must serialise as it is, and the windowing hot loop
must touch nothing heavier than dict and list operations.

Rows already in a changelog may be in the first layout (`LegacySourceState`:
one- and two-letter keys per template, optional keys missing);
`load_source_state` converts them on read, so a worker upgraded in place
continues their windows as if it had written them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NotRequired, TypedDict, cast

from loglytics.mining import PositionStats, RunningStats

__all__ = [
    "STATE_VERSION",
    "SourceState",
    "StoredSourceState",
    "TemplateAcc",
    "WindowAcc",
    "load_source_state",
    "new_source_state",
]

STATE_VERSION = 2
"""The layout `new_source_state` writes; rows without ``version`` are layout 1."""


class TemplateAcc(TypedDict):
    """One template's share of a window, as it accumulates."""

    template: str
    """The template's text when the window first saw it (the digest prefers the current one)."""
    count: int
    level: str
    """The level of the template's first line in the window."""
    new: bool
    """Whether a line in the window created the template."""
    exemplars: list[str]
    """The first few lines of it, truncated (see `windows.MAX_EXEMPLARS`)."""
    numeric: PositionStats
    """Statistics of the leading numeric params, by position."""


class WindowAcc(TypedDict):
    """One open tumbling window [start, end) of a source."""

    start: float
    end: float
    lines: int
    levels: dict[str, int]
    """Level -> lines."""
    templates: dict[str, TemplateAcc]
    """Template id -> its accumulator."""
    flagged: int
    """Lines accepted with a flag (truncated, undecodable, implausible time)."""


class SourceState(TypedDict):
    """Everything the ingest stage keeps about one tenant/source between batches."""

    version: int
    """`STATE_VERSION` of the layout."""
    offsets: dict[str, int]
    """Partition (as a JSON key) -> the last Kafka offset absorbed: replays are skipped."""
    max_ts: float
    """The newest event time seen; minus the allowed lateness it is the watermark."""
    closed_until: float
    """End of the last window emitted (0.0: none yet): older lines count as late."""
    last_arrival: float
    """Wall-clock time of the last absorbed batch."""
    windows: dict[str, WindowAcc]
    """``repr(start)`` -> the open window starting there."""
    activity: dict[str, list[float]]
    """Template id -> ``[count, last_seen, seq]`` (`TemplateMiner.activity`): the miner's
    recency, kept with the offsets it matches."""
    parsing: NotRequired[dict[str, Any]]
    """Format (``""``: detection) -> `EventParser.state()`: a header learned from the
    source's first lines, an event held for its next message. Absent when there is
    nothing detection would not find again (`SourcePipeline.parsing_state`)."""


class LegacyTemplateAcc(TypedDict):
    """Layout 1 of `TemplateAcc`: ``t`` template, ``n`` count, ``lv`` level,
    ``new``, ``ex`` exemplars, ``num`` numeric."""

    t: str
    n: int
    lv: str
    new: bool
    ex: list[str]
    num: dict[str, RunningStats]


class LegacyWindowAcc(TypedDict):
    """Layout 1 of `WindowAcc`: the same keys, templates in layout 1."""

    start: float
    end: float
    lines: int
    levels: dict[str, int]
    templates: dict[str, LegacyTemplateAcc]
    flagged: int


class LegacySourceState(TypedDict):
    """Layout 1 of `SourceState`: no version; ``closed_until`` and ``activity``
    appear only once a window closed or a batch was absorbed."""

    offsets: dict[str, int]
    max_ts: float
    last_arrival: float
    windows: dict[str, LegacyWindowAcc]
    closed_until: NotRequired[float]
    activity: NotRequired[dict[str, list[float]]]


StoredSourceState = SourceState | LegacySourceState
"""A row of the ``ingest-state`` table as read back: either layout."""


def new_source_state() -> SourceState:
    return {
        "version": STATE_VERSION,
        "offsets": {},
        "max_ts": 0.0,
        "closed_until": 0.0,
        "last_arrival": 0.0,
        "windows": {},
        "activity": {},
    }


def load_source_state(row: Mapping[str, object] | None) -> SourceState:
    """A table row as a `SourceState` (a fresh one for None), converting layout 1.

    A current row is returned as it is (the same dict: the caller updates it
    in place), which keeps this to one lookup per source and batch.
    """
    if not row:
        return new_source_state()
    if row.get("version") == STATE_VERSION:
        return cast(SourceState, row)
    if "version" in row:
        raise ValueError(f"ingest state row of unknown layout {row['version']!r}")
    return _upgrade(cast(LegacySourceState, row))


def _upgrade(old: LegacySourceState) -> SourceState:
    """Layout 1 -> 2: words for the template keys, the optional keys filled in.

    A missing ``closed_until`` meant 0.0 and a missing ``activity`` meant none,
    so the converted row windows exactly as the old one would have.
    """
    return {
        "version": STATE_VERSION,
        "offsets": dict(old["offsets"]),
        "max_ts": old["max_ts"],
        "closed_until": old.get("closed_until", 0.0),
        "last_arrival": old["last_arrival"],
        "windows": {key: _upgrade_window(win) for key, win in old["windows"].items()},
        "activity": dict(old.get("activity") or {}),
    }


def _upgrade_window(old: LegacyWindowAcc) -> WindowAcc:
    return {
        "start": old["start"],
        "end": old["end"],
        "lines": old["lines"],
        "levels": dict(old["levels"]),
        "templates": {
            tid: {
                "template": acc["t"],
                "count": acc["n"],
                "level": acc["lv"],
                "new": acc["new"],
                "exemplars": list(acc["ex"]),
                "numeric": {pos: list(stats) for pos, stats in acc["num"].items()},
            }
            for tid, acc in old["templates"].items()
        },
        "flagged": old["flagged"],
    }
