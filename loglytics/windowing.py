"""Tumbling event-time windows per tenant/source, kept as plain dicts.

Why plain dicts: the whole per-source state is written to a changelog-backed
Faust table once per batch, so it must serialise cheaply, and the hot loop
that adds lines must touch nothing heavier than dict and list operations.
The state also remembers the last Kafka offset it absorbed, so a batch that
is re-delivered after a crash is recognised and skipped: every line is
counted once in the window it belongs to.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

from loglytics.schemas import NumericStats, TemplateCount, WindowDigest

MAX_EXEMPLARS = 3
MAX_NUMERIC_POSITIONS = 4
MAX_EXEMPLAR_CHARS = 400


@dataclass(frozen=True, slots=True)
class MinedLine:
    """One line after parsing and mining: what the window needs of it."""

    ts: float
    level: str
    template_id: str
    template: str
    is_new: bool
    params: tuple[str, ...]
    message: str
    flagged: bool = False


class TemplateHit(Protocol):
    """What the windows need of a line's mining result (a `Match`, or a `MinedLine`)."""

    @property
    def template_id(self) -> str: ...
    @property
    def template(self) -> str: ...
    @property
    def is_new(self) -> bool: ...
    @property
    def params(self) -> tuple[str, ...]: ...


@dataclass(slots=True)
class MinedBatch:
    """A message's mined lines as parallel columns, in line order.

    Why columns: the ingest hot path handles hundreds of lines per message,
    and one object per line (plus reading it back field by field) cost about
    as much as the windowing itself; columns let the windows count levels and
    templates with C-level `Counter`s over slices instead of a Python loop.
    `flagged` holds the sorted indices of flagged lines (usually none).
    """

    ts: list[float]
    levels: list[str]
    hits: Sequence[TemplateHit]
    messages: list[str]
    flagged: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ts)

    def lines(self) -> list[MinedLine]:
        """The same lines as one `MinedLine` each (for callers that want objects)."""
        flagged = set(self.flagged)
        return [
            MinedLine(t, lv, h.template_id, h.template, h.is_new, h.params, msg, i in flagged)
            for i, (t, lv, h, msg) in enumerate(
                zip(self.ts, self.levels, self.hits, self.messages, strict=True)
            )
        ]

    @classmethod
    def of(cls, lines: Iterable[MinedLine]) -> MinedBatch:
        rows = list(lines)
        return cls(
            ts=[ln.ts for ln in rows],
            levels=[ln.level for ln in rows],
            hits=rows,
            messages=[ln.message for ln in rows],
            flagged=[i for i, ln in enumerate(rows) if ln.flagged],
        )


# Parameter text -> its number, or NaN for "not a number"; bounded. Repeated values
# (status codes, small counts, latencies) are common, and float() raising is slow.
_NUMBERS: dict[str, float] = {}
_NUMBERS_CAP = 65_536
_POSITIONS = tuple(str(i) for i in range(MAX_NUMERIC_POSITIONS))


def _number(text: str) -> float | None:
    # Cheap pre-check: most params are not numbers, and float() raising is slow.
    if not text or not (text[0].isdigit() or (text[0] in "-." and len(text) > 1)):
        return None
    try:
        value = float(text.rstrip("msMSkKbB%"))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def window_start(ts: float, length: float) -> float:
    return math.floor(ts / length) * length


def new_source_state() -> dict[str, Any]:
    return {"offsets": {}, "max_ts": 0.0, "last_arrival": 0.0, "windows": {}}


def add_lines(
    state: dict[str, Any], lines: Iterable[MinedLine], length: float, lateness: float
) -> int:
    """Add mined lines to their windows; returns how many arrived after their window closed.

    A line whose window already closed (older than the watermark) is counted in
    the oldest still-open window instead, with the late flag: nothing is lost.
    """
    return add_batch(state, MinedBatch.of(lines), length, lateness)


def add_batch(state: dict[str, Any], batch: MinedBatch, length: float, lateness: float) -> int:
    """`add_lines` for a columnar batch (the ingest hot path); same result, line for line.

    Pass 1 walks the timestamps in order (the watermark a line is judged by
    depends on the lines before it) and cuts the batch into runs of lines that
    share a window; pass 2 aggregates each run with slices and Counters.
    """
    ts = batch.ts
    if not ts:
        return 0
    windows: dict[str, dict[str, Any]] = state["windows"]
    max_ts: float = state["max_ts"]
    closed_until: float = state.get("closed_until", 0.0)
    late = 0
    floor = math.floor
    runs: list[tuple[str, int, int]] = []
    run_key = ""
    run_begin = 0
    normal_start = math.nan  # start of the previous line's window, when it was its own
    for i, t in enumerate(ts):
        if t > max_ts:
            max_ts = t
        start = floor(t / length) * length
        if start == normal_start:
            continue  # same window as the previous line, which exists: nothing to decide
        normal_start = start
        if start < closed_until:
            # Its window was already emitted: count it once, in the first open window, flagged.
            start = closed_until
            late += 1
            normal_start = math.nan
        key = repr(start)
        if key not in windows:
            if start + length <= max_ts - lateness and windows:
                # Too late for its own window (which already closed): keep it, flagged.
                key = min(windows, key=float)
                late += 1
                normal_start = math.nan
            else:
                windows[key] = {
                    "start": start,
                    "end": start + length,
                    "lines": 0,
                    "levels": {},
                    "templates": {},
                    "flagged": 0,
                }
        if key != run_key:
            if i:
                runs.append((run_key, run_begin, i))
            run_key, run_begin = key, i
    runs.append((run_key, run_begin, len(ts)))
    state["max_ts"] = max_ts
    for key, begin, end in runs:
        _aggregate(windows[key], batch, begin, end)
    return late


def _aggregate(win: dict[str, Any], batch: MinedBatch, begin: int, end: int) -> None:
    """Count lines [begin, end) of a batch into one window."""
    whole = begin == 0 and end == len(batch.ts)
    levels_in = batch.levels if whole else batch.levels[begin:end]
    hits = batch.hits if whole else batch.hits[begin:end]
    win["lines"] += end - begin
    levels: dict[str, int] = win["levels"]
    for level, n in Counter(levels_in).items():
        levels[level] = levels.get(level, 0) + n
    if batch.flagged:
        win["flagged"] += bisect_left(batch.flagged, end) - bisect_left(batch.flagged, begin)
    tids = [h.template_id for h in hits]
    templates: dict[str, dict[str, Any]] = win["templates"]
    counts = Counter(tids)
    for tid, n in counts.items():
        acc = templates.get(tid)
        if acc is None:
            first = tids.index(tid)
            hit = hits[first]
            acc = templates[tid] = {
                "t": hit.template,
                "n": 0,
                "lv": levels_in[first],
                "new": False,
                "ex": [],
                "num": {},
            }
        acc["n"] += n
        ex: list[str] = acc["ex"]
        if len(ex) < MAX_EXEMPLARS:
            j = tids.index(tid)
            while True:
                ex.append(batch.messages[begin + j][:MAX_EXEMPLAR_CHARS])
                if len(ex) >= MAX_EXEMPLARS:
                    break
                try:
                    j = tids.index(tid, j + 1)
                except ValueError:
                    break
    for tid in {h.template_id for h in hits if h.is_new}:
        templates[tid]["new"] = True
    _numeric(templates, tids, hits)


def _numeric(
    templates: dict[str, dict[str, Any]], tids: list[str], hits: Sequence[TemplateHit]
) -> None:
    """Fold the numeric parameters (first positions) of each line into its template's stats.

    Lines are grouped by template and their parameters transposed into columns,
    so that looking up numbers (`_NUMBERS`, a bounded cache of `_number`; NaN
    marks "not a number") and min/max/sum run per column in C; values are added
    in line order, as a line-by-line fold would.
    """
    groups: dict[str, list[tuple[str, ...]]] = {}
    for tid, hit in zip(tids, hits, strict=True):
        params = hit.params
        if params:
            group = groups.get(tid)
            if group is None:
                groups[tid] = [params]
            else:
                group.append(params)
    if not groups:
        return
    numbers = _NUMBERS
    for tid, rows in groups.items():
        num: dict[str, list[float]] = templates[tid]["num"]
        width = min(MAX_NUMERIC_POSITIONS, max(map(len, rows)))
        if min(map(len, rows)) >= width:
            columns: list[tuple[str, ...]] = list(zip(*rows, strict=False))[:width]
        else:
            columns = [tuple(r[pos] for r in rows if len(r) > pos) for pos in range(width)]
        for pos, column in enumerate(columns):
            values = list(map(numbers.get, column))
            if None in values:
                if len(numbers) >= _NUMBERS_CAP:
                    numbers.clear()
                for i, value in enumerate(values):
                    if value is None:
                        text = column[i]
                        number = _number(text)
                        values[i] = numbers[text] = math.nan if number is None else number
            found = [v for v in cast(list[float], values) if v == v]  # NaN: not a number
            if not found:
                continue
            key = _POSITIONS[pos]
            stats = num.get(key)
            if stats is None:
                num[key] = [len(found), min(found), max(found), sum(found[1:], found[0])]
            else:
                stats[0] += len(found)
                stats[1] = min(stats[1], *found)
                stats[2] = max(stats[2], *found)
                stats[3] = sum(found, stats[3])


def closable(state: dict[str, Any], lateness: float, *, idle: bool) -> list[dict[str, Any]]:
    """Remove and return the windows that are closed: past the watermark, or all when idle."""
    watermark = state["max_ts"] - lateness
    windows: dict[str, dict[str, Any]] = state["windows"]
    keys = sorted((k for k, w in windows.items() if idle or w["end"] <= watermark), key=float)
    closed = [windows.pop(k) for k in keys]
    if closed:
        state["closed_until"] = max(state.get("closed_until", 0.0), closed[-1]["end"])
    return closed


def to_digest(
    tenant: str, source: str, win: dict[str, Any], closed_by: str, template_of: Any = None
) -> WindowDigest:
    """Build the compact digest; `template_of(tid)` gives the template's current text."""
    templates: list[TemplateCount] = []
    new_ids: list[str] = []
    for tid, acc in sorted(win["templates"].items(), key=lambda kv: -int(kv[1]["n"])):
        text = template_of(tid) if template_of is not None else None
        numeric = [
            NumericStats(
                position=int(pos),
                count=int(s[0]),
                min=float(s[1]),
                max=float(s[2]),
                mean=float(s[3]) / max(1, int(s[0])),
            )
            for pos, s in sorted(acc["num"].items(), key=lambda kv: int(kv[0]))
        ]
        templates.append(
            TemplateCount(
                template_id=tid,
                template=text or acc["t"],
                count=int(acc["n"]),
                level=str(acc["lv"]),
                new=bool(acc["new"]),
                exemplars=list(acc["ex"]),
                numeric=numeric,
            )
        )
        if acc["new"]:
            new_ids.append(tid)
    return WindowDigest(
        tenant=tenant,
        source=source,
        window_start=float(win["start"]),
        window_end=float(win["end"]),
        line_count=int(win["lines"]),
        level_counts={k: int(v) for k, v in win["levels"].items()},
        templates=templates,
        new_template_ids=new_ids,
        flagged_lines=int(win["flagged"]),
        closed_by=closed_by,
    )
