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
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import filterfalse
from math import isnan
from typing import Any, cast

from loglytics.mining.miner import NUMERIC_PARAMS
from loglytics.mining.model import MinedShapes
from loglytics.mining.params import NumericOp, apply_plan, rebuild_token
from loglytics.schemas import NumericStats, TemplateCount, WindowDigest
from loglytics.speedups import fold, fold_values, numbers

MAX_EXEMPLARS = 3
MAX_NUMERIC_POSITIONS = NUMERIC_PARAMS  # the miner prepares number recipes for as many
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


@dataclass(slots=True)
class MinedBatch:
    """A message's mined lines as parallel columns, in line order.

    Why columns: the ingest hot path handles hundreds of lines per message,
    and one object per line (plus reading it back field by field) cost about
    as much as the windowing itself; columns let the windows count levels and
    templates with C-level `Counter`s over slices, and fold numeric params
    per shape down whole columns. `flagged` holds the sorted indices of
    flagged lines (usually none).
    """

    ts: list[float]
    levels: list[str]
    messages: list[str]
    mined: MinedShapes
    flagged: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ts)

    def lines(self) -> list[MinedLine]:
        """The same lines as one `MinedLine` each (for callers that want objects)."""
        mined = self.mined
        flagged = set(self.flagged)
        new = set(mined.new_lines)
        return [
            MinedLine(
                t,
                lv,
                tid,
                mined.templates[tid],
                i in new,
                apply_plan(mined.plans[shape], values),
                msg,
                i in flagged,
            )
            for i, (t, lv, tid, shape, values, msg) in enumerate(
                zip(
                    self.ts,
                    self.levels,
                    mined.template_ids,
                    mined.shapes,
                    mined.values,
                    self.messages,
                    strict=True,
                )
            )
        ]

    @classmethod
    def of(cls, lines: Iterable[MinedLine]) -> MinedBatch:
        """Columns for lines mined one by one: each template is its own "shape".

        Its params are its values and every leading param is read as a number,
        which is how the windows treat a `MinedLine`.
        """
        rows = list(lines)
        tids = [ln.template_id for ln in rows]
        params = [ln.params for ln in rows]
        width: dict[str, int] = {}
        for tid, p in zip(tids, params, strict=True):
            width[tid] = max(width.get(tid, 0), min(len(p), MAX_NUMERIC_POSITIONS))
        templates: dict[str, str] = {}
        for ln in rows:
            templates.setdefault(ln.template_id, ln.template)
        mined = MinedShapes(
            shapes=tids,
            values=params,
            template_ids=tids,
            templates=templates,
            recipes={tid: tuple(("v", k) for k in range(w)) for tid, w in width.items()},
            plans=dict.fromkeys(tids),
            new_lines=[i for i, ln in enumerate(rows) if ln.is_new],
        )
        return cls(
            ts=[ln.ts for ln in rows],
            levels=[ln.level for ln in rows],
            messages=[ln.message for ln in rows],
            mined=mined,
            flagged=[i for i, ln in enumerate(rows) if ln.flagged],
        )


_POSITIONS = tuple(str(i) for i in range(MAX_NUMERIC_POSITIONS))


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


def _new_window(start: float, length: float) -> dict[str, Any]:
    return {
        "start": start,
        "end": start + length,
        "lines": 0,
        "levels": {},
        "templates": {},
        "flagged": 0,
    }


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
    # The usual message lies inside one window: then the first line's decision holds
    # for all of them, and pass 1 is a min and a max instead of a loop.
    start = floor(min(ts) / length) * length
    if start == floor(max(ts) / length) * length and start >= closed_until:
        key = repr(start)
        if key in windows or not (start + length <= max(max_ts, ts[0]) - lateness and windows):
            win = windows.get(key) or windows.setdefault(key, _new_window(start, length))
            state["max_ts"] = max(max_ts, max(ts))
            _aggregate(win, batch, 0, len(ts))
            return 0
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
                windows[key] = _new_window(start, length)
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
    mined = batch.mined
    levels_in = batch.levels if whole else batch.levels[begin:end]
    tids = mined.template_ids if whole else mined.template_ids[begin:end]
    win["lines"] += end - begin
    levels: dict[str, int] = win["levels"]
    for level, n in Counter(levels_in).items():
        levels[level] = levels.get(level, 0) + n
    if batch.flagged:
        win["flagged"] += bisect_left(batch.flagged, end) - bisect_left(batch.flagged, begin)
    templates: dict[str, dict[str, Any]] = win["templates"]
    counts = Counter(tids)
    for tid, n in counts.items():
        acc = templates.get(tid)
        if acc is None:
            acc = templates[tid] = {
                "t": mined.templates[tid],
                "n": 0,
                "lv": levels_in[tids.index(tid)],
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
    new_lines = mined.new_lines
    for i in new_lines[bisect_left(new_lines, begin) : bisect_left(new_lines, end)]:
        templates[mined.template_ids[i]]["new"] = True
    if mined.recipes:
        shapes = mined.shapes if whole else mined.shapes[begin:end]
        values = mined.values if whole else mined.values[begin:end]
        _numeric(templates, mined, shapes, values, tids)


def _groups(
    keys: list[int], values: list[tuple[str, ...]]
) -> Iterator[tuple[int, list[tuple[str, ...]]]]:
    """Each group key with its lines' values, in line order within the group.

    A stable sort of line numbers by the (small integer) key: C-level work per
    line, Python work per group.
    """
    if len(set(keys)) == 1:
        yield keys[0], values
        return
    order = sorted(range(len(keys)), key=keys.__getitem__)
    ordered = list(map(values.__getitem__, order))
    begin = 0
    for key, size in sorted(Counter(keys).items()):
        yield key, ordered[begin : begin + size]
        begin += size


def _derived_numbers(op: NumericOp, rows: list[tuple[str, ...]]) -> list[float]:
    """The numbers a constant or rebuilt param yields over a group's rows (non-numbers left out)."""
    if op[0] == "n":
        constant = op[1]
        return [] if constant is None else [cast(float, constant)] * len(rows)
    _, pieces, first = cast(tuple[str, tuple[str, ...], int], op)
    texts = [rebuild_token(pieces, first, row) for row in rows]
    return list(filterfalse(isnan, numbers(texts)))


def _numeric(
    templates: dict[str, dict[str, Any]],
    mined: MinedShapes,
    shapes: list[str],
    values: list[tuple[str, ...]],
    tids: list[str],
) -> None:
    """Fold the numeric params (first positions) of each line into its template's stats.

    Shapes of one template whose params read the same way (the same recipe:
    ``GET /a user=bob`` and ``GET /b user=eve`` under ``GET <*> user=<*>``)
    form one group, and each param position of a group is one column,
    converted and folded into count/min/max/sum in one compiled call
    (`fold`). Within a group values are added in line order; a template
    whose shapes read differently adds group by group.
    """
    recipes = mined.recipes
    group_of: dict[str, int] = {}
    groups: dict[tuple[str, tuple[NumericOp, ...]], int] = {}
    for shape, tid in dict(zip(shapes, tids, strict=True)).items():
        recipe = recipes[shape][:MAX_NUMERIC_POSITIONS]
        group_of[shape] = groups.setdefault((tid, recipe), len(groups)) if recipe else -1
    if not groups:
        return
    keys = list(map(group_of.__getitem__, shapes))
    by_key = list(groups)
    for key, rows in _groups(keys, values):
        if key < 0:
            continue  # shapes with no params to read
        tid, recipe = by_key[key]
        num: dict[str, list[float]] = templates[tid]["num"]
        for pos, op in enumerate(recipe):
            position = _POSITIONS[pos]
            if op[0] == "v":  # a masked value: one compiled call down the column
                folded = fold(rows, cast(int, op[1]), num.get(position))
            else:
                folded = fold_values(_derived_numbers(op, rows), num.get(position))
            if folded is not None:
                num[position] = folded


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
