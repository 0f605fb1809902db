"""Test helpers: the ingest hot path's line-by-line definitions, one object per line.

A worker parses and mines a message into columns (`SourcePipeline.process_batch`)
and the windows add whole batches (`windows.add_batch`). These build the same
from one `MinedLine` per line: what the tests compare the columns against, and
what a windowing test writes its input in. Kept here, not in the package,
because nothing in production uses them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from loglytics.ingest.pipeline import Decoded, SourcePipeline
from loglytics.ingest.state import SourceState
from loglytics.ingest.windows import (
    MAX_EXEMPLAR_CHARS,
    MAX_EXEMPLARS,
    MAX_TEMPLATE_CHARS,
    MAX_WINDOW_TEMPLATES,
    add_batch,
)
from loglytics.mining import MARK, NUMERIC_PARAMS, MinedBatch, MinedLine, MinedShapes
from loglytics.mining.params import numeric_recipe

__all__ = ["add_lines", "mined_batch_of", "process_lines", "reference_add_lines"]


def process_lines(
    pipe: SourcePipeline, decoded: Decoded, arrival_ts: float
) -> tuple[list[MinedLine], int]:
    """The line-by-line definition of `SourcePipeline.process_batch`: one object per line.

    Parses line by line (no columnar parser) and mines with ``add_many``;
    returns the lines and how many were flagged.
    """
    columns, stamps, flagged = pipe._parse(decoded, arrival_ts, bulk=False)
    hits = pipe.miner.add_many(columns.messages, arrival_ts)
    texts = columns.texts or columns.messages  # what exemplars show (a trace's whole text)
    lines = [
        MinedLine(t, lv, h.template_id, h.template, h.is_new, h.params, msg, i in flagged)
        for i, (t, lv, h, msg) in enumerate(zip(stamps, columns.levels, hits, texts, strict=True))
    ]
    return lines, len(flagged)


def mined_batch_of(lines: Iterable[MinedLine]) -> MinedBatch:
    """Columns for lines mined one by one: each template is its own "shape".

    Its params are its values and every leading param is read as a number,
    which is how the windows treat a `MinedLine`: the recipe of a shape made
    only of masked values, as the miner would prepare it.
    """
    rows = list(lines)
    tids = [ln.template_id for ln in rows]
    width: dict[str, int] = {}
    for ln in rows:
        width[ln.template_id] = max(
            width.get(ln.template_id, 0), min(len(ln.params), NUMERIC_PARAMS)
        )
    templates: dict[str, str] = {}
    for ln in rows:
        templates.setdefault(ln.template_id, ln.template)
    mined = MinedShapes(
        shapes=tids,
        values=[ln.params for ln in rows],
        template_ids=tids,
        templates=templates,
        recipes={
            tid: numeric_recipe((MARK,) * w, (MARK,) * w, NUMERIC_PARAMS)
            for tid, w in width.items()
        },
        plans=dict.fromkeys(tids),
        new_lines=[i for i, ln in enumerate(rows) if ln.is_new],
    )
    return MinedBatch(
        ts=[ln.ts for ln in rows],
        levels=[ln.level for ln in rows],
        messages=[ln.message for ln in rows],
        mined=mined,
        flagged=[i for i, ln in enumerate(rows) if ln.flagged],
    )


def add_lines(
    state: SourceState, lines: Iterable[MinedLine], length: float, lateness: float
) -> int:
    """`add_batch` for lines mined one by one; returns how many arrived late."""
    return add_batch(state, mined_batch_of(lines), length, lateness)


def reference_add_lines(
    state: SourceState, lines: list[MinedLine], length: float, lateness: float
) -> int:
    """The line-by-line definition of `add_batch` (its first implementation).

    A window test compares `add_batch` with this after every batch.
    """
    windows = state["windows"]
    max_ts = state["max_ts"]
    closed_until = state.get("closed_until", 0.0)
    late = 0
    for line in lines:
        max_ts = max(max_ts, line.ts)
        start = math.floor(line.ts / length) * length
        if start < closed_until:
            start, late = closed_until, late + 1
        key = repr(start)
        win = windows.get(key)
        if win is None:
            if start + length <= max_ts - lateness and windows:
                key = min(windows, key=float)
                win, late = windows[key], late + 1
            else:
                win = windows[key] = {
                    "start": start,
                    "end": start + length,
                    "lines": 0,
                    "levels": {},
                    "templates": {},
                    "flagged": 0,
                }
        win["lines"] += 1
        win["levels"][line.level] = win["levels"].get(line.level, 0) + 1
        win["flagged"] += line.flagged
        if line.template_id not in win["templates"]:
            if len(win["templates"]) >= MAX_WINDOW_TEMPLATES:
                continue  # the window tracks no more templates: counted above only
            win["templates"][line.template_id] = {
                "template": line.template[:MAX_TEMPLATE_CHARS],
                "count": 0,
                "level": line.level,
                "new": False,
                "exemplars": [],
                "numeric": {},
            }
        acc = win["templates"][line.template_id]
        acc["count"] += 1
        acc["new"] = acc["new"] or line.is_new
        if len(acc["exemplars"]) < MAX_EXEMPLARS:
            acc["exemplars"].append(line.message[:MAX_EXEMPLAR_CHARS])
        for pos, text in enumerate(line.params[:NUMERIC_PARAMS]):
            try:
                value = float(text.rstrip("msMSkKbB%"))
            except ValueError:
                continue
            if not text or not (text[0].isdigit() or (text[0] in "-." and len(text) > 1)):
                continue
            if not math.isfinite(value):
                continue
            stats = acc["numeric"].setdefault(str(pos), [0, value, value, 0.0])
            stats[0] += 1
            stats[1] = min(stats[1], value)
            stats[2] = max(stats[2], value)
            stats[3] += value
    state["max_ts"] = max_ts
    return late
