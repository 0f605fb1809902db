"""Tumbling event-time windows per tenant/source, kept in the source's state row.

The state (`loglytics.ingest.state`) is plain dicts because it is written to
a changelog-backed Faust table once per batch, and the hot loop that adds
lines touches nothing heavier than dict and list operations. The state also
remembers the last Kafka offset it absorbed, so a batch that is re-delivered
after a crash is recognised and skipped: every line is counted once in the
window it belongs to. What a line's params mean as numbers is the miner's
business (`fold_numbers`); the windows only keep the statistics.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable

from loglytics.ingest.state import SourceState, TemplateAcc, WindowAcc
from loglytics.mining import MinedBatch, PositionStats, fold_numbers
from loglytics.schemas import NumericStats, TemplateCount, WindowDigest

MAX_EXEMPLARS = 3
MAX_EXEMPLAR_CHARS = 400
# What a window keeps of each template's text (detection and the prompts read at most
# this much), and how many templates it tracks one by one: the bounds that keep a
# digest, and a state row of a few open windows, within one Kafka message
# (`kafka_clients.MAX_MESSAGE_BYTES`) whatever the lines are like. Lines of further
# templates still count in the window's lines and levels.
MAX_TEMPLATE_CHARS = 500
MAX_WINDOW_TEMPLATES = 500


def window_start(ts: float, length: float) -> float:
    return math.floor(ts / length) * length


def _new_window(start: float, length: float) -> WindowAcc:
    return {
        "start": start,
        "end": start + length,
        "lines": 0,
        "levels": {},
        "templates": {},
        "flagged": 0,
    }


def add_batch(state: SourceState, batch: MinedBatch, length: float, lateness: float) -> int:
    """Add a batch's lines to their windows; returns how many arrived after their window closed.

    A line whose window already closed (older than the watermark) is counted in
    the oldest still-open window instead, with the late flag: nothing is lost.
    The tests hold it, line for line, to a definition that adds one line at a time.

    Pass 1 walks the timestamps in order (the watermark a line is judged by
    depends on the lines before it) and cuts the batch into runs of lines that
    share a window; pass 2 aggregates each run with slices and Counters.
    """
    ts = batch.ts
    if not ts:
        return 0
    windows = state["windows"]
    max_ts = state["max_ts"]
    closed_until = state["closed_until"]
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


def _aggregate(win: WindowAcc, batch: MinedBatch, begin: int, end: int) -> None:
    """Count lines [begin, end) of a batch into one window."""
    whole = begin == 0 and end == len(batch.ts)
    mined = batch.mined
    levels_in = batch.levels if whole else batch.levels[begin:end]
    tids = mined.template_ids if whole else mined.template_ids[begin:end]
    win["lines"] += end - begin
    levels = win["levels"]
    for level, n in Counter(levels_in).items():
        levels[level] = levels.get(level, 0) + n
    if batch.flagged:
        win["flagged"] += bisect_left(batch.flagged, end) - bisect_left(batch.flagged, begin)
    templates = win["templates"]
    counts = Counter(tids)
    for tid, n in counts.items():
        acc = templates.get(tid)
        if acc is None:
            if len(templates) >= MAX_WINDOW_TEMPLATES:
                continue  # counted in the window's lines and levels above
            acc = templates[tid] = {
                "template": mined.templates[tid][:MAX_TEMPLATE_CHARS],
                "count": 0,
                "level": levels_in[tids.index(tid)],
                "new": False,
                "exemplars": [],
                "numeric": {},
            }
        acc["count"] += n
        ex = acc["exemplars"]
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
        created = templates.get(mined.template_ids[i])
        if created is not None:
            created["new"] = True
    if mined.recipes:
        fold_numbers(mined, begin, end, _numeric_of(templates))


def _numeric_of(templates: dict[str, TemplateAcc]) -> Callable[[str], PositionStats]:
    """Where `fold_numbers` keeps a template's numbers: its accumulator in the window."""

    def numeric(tid: str) -> PositionStats:
        acc = templates.get(tid)
        return acc["numeric"] if acc is not None else {}  # untracked: its numbers go nowhere

    return numeric


def closable(state: SourceState, lateness: float, *, idle: bool) -> list[WindowAcc]:
    """Remove and return the windows that are closed: past the watermark, or all when idle."""
    watermark = state["max_ts"] - lateness
    windows = state["windows"]
    keys = sorted((k for k, w in windows.items() if idle or w["end"] <= watermark), key=float)
    closed = [windows.pop(k) for k in keys]
    if closed:
        state["closed_until"] = max(state["closed_until"], closed[-1]["end"])
    return closed


def to_digest(
    tenant: str,
    source: str,
    win: WindowAcc,
    closed_by: str,
    template_of: Callable[[str], str | None] | None = None,
) -> WindowDigest:
    """Build the compact digest; `template_of(tid)` gives the template's current text.

    A window of more than `MAX_WINDOW_TEMPLATES` templates lists the first ones it saw:
    its template counts then add up to less than its `line_count`.
    """
    templates: list[TemplateCount] = []
    new_ids: list[str] = []
    for tid, acc in sorted(win["templates"].items(), key=lambda kv: -int(kv[1]["count"])):
        text = template_of(tid) if template_of is not None else None
        numeric = [
            NumericStats(
                position=int(pos),
                count=int(s[0]),
                min=float(s[1]),
                max=float(s[2]),
                mean=float(s[3]) / max(1, int(s[0])),
            )
            for pos, s in sorted(acc["numeric"].items(), key=lambda kv: int(kv[0]))
        ]
        templates.append(
            TemplateCount(
                template_id=tid,
                template=(text or acc["template"])[:MAX_TEMPLATE_CHARS],
                count=int(acc["count"]),
                level=str(acc["level"]),
                new=bool(acc["new"]),
                exemplars=list(acc["exemplars"]),
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
