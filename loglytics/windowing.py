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
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

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
    windows: dict[str, dict[str, Any]] = state["windows"]
    max_ts: float = state["max_ts"]
    closed_until: float = state.get("closed_until", 0.0)
    late = 0
    for line in lines:
        ts = line.ts
        if ts > max_ts:
            max_ts = ts
        start = math.floor(ts / length) * length
        if start < closed_until:
            # Its window was already emitted: count it once, in the first open window, flagged.
            start = closed_until
            late += 1
        key = repr(start)
        win = windows.get(key)
        if win is None:
            if start + length <= max_ts - lateness and windows:
                # Too late for its own window (which already closed): keep it, flagged.
                key = min(windows, key=float)
                win = windows[key]
                late += 1
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
        levels = win["levels"]
        levels[line.level] = levels.get(line.level, 0) + 1
        if line.flagged:
            win["flagged"] += 1
        templates = win["templates"]
        acc = templates.get(line.template_id)
        if acc is None:
            acc = templates[line.template_id] = {
                "t": line.template,
                "n": 0,
                "lv": line.level,
                "new": line.is_new,
                "ex": [],
                "num": {},
            }
        acc["n"] += 1
        if line.is_new:
            acc["new"] = True
        if len(acc["ex"]) < MAX_EXEMPLARS:
            acc["ex"].append(line.message[:MAX_EXEMPLAR_CHARS])
        if line.params:
            num = acc["num"]
            for pos, text in enumerate(line.params[:MAX_NUMERIC_POSITIONS]):
                value = _number(text)
                if value is None:
                    continue
                stats = num.get(str(pos))
                if stats is None:
                    num[str(pos)] = [1, value, value, value]
                else:
                    stats[0] += 1
                    if value < stats[1]:
                        stats[1] = value
                    if value > stats[2]:
                        stats[2] = value
                    stats[3] += value
    state["max_ts"] = max_ts
    return late


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
