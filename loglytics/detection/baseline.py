"""Each source's adaptive baseline: what its templates, their numeric variables and its
severe-line count usually look like.

Exponentially weighted means and variances, kept per source in a changelog-backed
table (JSON) by the detection stage. Signals compare a window against the baseline
*before* the window updates it. Rows stored before the state had named keys
(`"t"`, `"c"`, `"num"`, ...) are converted on read by `restore_baseline`.
"""

from __future__ import annotations

from typing import TypedDict, cast

from loglytics.schemas import WindowDigest

ALPHA = 0.2  # fast EWMA: the "usual" level adapts within ~5 windows
SLOW_ALPHA = 0.03  # slow reference for gradual drifts (leaks)
# EWMA variances start at zero and reach ~83% of the truth after 8 windows: range
# checks on numeric variables wait for that, or early noise looks like an anomaly.
MIN_NUMERIC_HISTORY = 8
SEVERE_LEVELS = frozenset({"ERROR", "CRITICAL", "FATAL", "ALERT", "EMERGENCY"})
MAX_BASELINE_TEMPLATES = 2000
TEMPLATE_TEXT_CHARS = 300
RISE = 1.02  # a variable "rises" when its window mean exceeds the last one by 2%


class Ewma(TypedDict):
    """An exponentially weighted mean and variance of one quantity, per window."""

    mean: float
    variance: float


class VariableHistory(TypedDict):
    """One numeric variable of a template (by position) over the windows it appeared in."""

    mean: Ewma  # of the variable's per-window mean (fast)
    reference: float  # a slow-moving level that a leak pulls away from
    last_mean: float  # its mean in the last window it appeared in
    rising_windows: int  # consecutive windows its mean rose by more than 2%
    windows_seen: int


class TemplateHistory(TypedDict):
    """One template of the source: how often it usually appears, and what it said."""

    count: Ewma  # lines per window, absent windows counting as zero
    windows_seen: int  # windows it appeared in
    variables: dict[str, VariableHistory]  # by position (a string: JSON object keys)
    template: str  # its text, cut short (a drop signal names the template that stopped)
    level: str  # its log level when first seen
    last_seen_window: int  # the baseline's window count when it last appeared (eviction order)
    total_count: int  # lines ever seen (the templates table's count)
    first_seen: float  # start of the first window it appeared in


class Baseline(TypedDict):
    """A source's baseline: its windows absorbed so far, and per-template history."""

    windows: int  # windows absorbed
    last_window: float | None  # start of the last absorbed window (replays skip up to it)
    severe_lines: Ewma  # lines at a severe level per window
    templates: dict[str, TemplateHistory]  # by template id


def new_baseline() -> Baseline:
    return {
        "windows": 0,
        "last_window": None,
        "severe_lines": {"mean": 0.0, "variance": 0.0},
        "templates": {},
    }


def _ewma(stat: Ewma, value: float, alpha: float = ALPHA) -> None:
    mean, var = stat["mean"], stat["variance"]
    diff = value - mean
    incr = alpha * diff
    stat["mean"] = mean + incr
    stat["variance"] = (1 - alpha) * (var + diff * incr)


def update_baseline(digest: WindowDigest, baseline: Baseline) -> None:
    """Absorb a window into the baseline (after its signals were computed)."""
    known = baseline["templates"]
    for tpl in digest.templates:
        hist = known.get(tpl.template_id)
        if hist is None:
            hist = known[tpl.template_id] = {
                "count": {"mean": float(tpl.count), "variance": 0.0},
                "windows_seen": 0,
                "variables": {},
                "template": tpl.template[:TEMPLATE_TEXT_CHARS],
                "level": tpl.level,
                "last_seen_window": baseline["windows"],
                "total_count": 0,
                "first_seen": digest.window_start,
            }
        else:
            _ewma(hist["count"], float(tpl.count))
            hist["template"] = tpl.template[:TEMPLATE_TEXT_CHARS]
            hist["last_seen_window"] = baseline["windows"]
        hist["windows_seen"] += 1
        hist["total_count"] += tpl.count
        for stat in tpl.numeric:
            _absorb_variable(hist["variables"], str(stat.position), stat.mean)
    present = {tpl.template_id for tpl in digest.templates}
    for tid, hist in known.items():
        if tid not in present:
            _ewma(hist["count"], 0.0)
    severe = sum(t.count for t in digest.templates if t.level in SEVERE_LEVELS)
    _ewma(baseline["severe_lines"], float(severe))
    baseline["windows"] += 1
    baseline["last_window"] = digest.window_start
    if len(known) > MAX_BASELINE_TEMPLATES:
        # Bounded: forget the templates seen longest ago.
        by_age = sorted(known.items(), key=lambda kv: kv[1]["last_seen_window"])
        for tid, _ in by_age[: len(known) - MAX_BASELINE_TEMPLATES]:
            del known[tid]


def _absorb_variable(variables: dict[str, VariableHistory], position: str, mean: float) -> None:
    hist = variables.get(position)
    if hist is None:
        variables[position] = {
            "mean": {"mean": mean, "variance": 0.0},
            "reference": mean,
            "last_mean": mean,
            "rising_windows": 0,
            "windows_seen": 1,
        }
        return
    hist["rising_windows"] = hist["rising_windows"] + 1 if mean > hist["last_mean"] * RISE else 0
    hist["last_mean"] = mean
    _ewma(hist["mean"], mean)
    if hist["windows_seen"] < MIN_NUMERIC_HISTORY:
        hist["reference"] = hist["mean"]["mean"]  # the reference starts from the settled mean
    else:
        hist["reference"] += SLOW_ALPHA * (mean - hist["reference"])
    hist["windows_seen"] += 1


def restore_baseline(row: object) -> Baseline:
    """The baseline a table row holds (none yet: a new one), in named form whatever form
    it was stored in."""
    if not row:
        return new_baseline()
    if isinstance(row, dict) and "t" in row:
        return _from_legacy(cast(_LegacyBaseline, row))
    return cast(Baseline, row)


# The form rows were stored in before the state had named keys: written by every
# worker up to the named-state change, so a changelog may still hold it.


class _LegacyVariable(TypedDict):
    m: list[float]  # [mean, variance]
    ref: float
    last: float
    up: int
    n: int


class _LegacyTemplate(TypedDict):
    c: list[float]  # [mean, variance]
    n: int
    num: dict[str, _LegacyVariable]
    text: str
    lv: str
    seen: int
    total: int  # written by the stage right after each update, so always present
    first: float


class _LegacyBaseline(TypedDict):
    windows: int
    last_window: float | None
    err: list[float]  # [mean, variance]
    t: dict[str, _LegacyTemplate]


def _legacy_ewma(pair: list[float]) -> Ewma:
    return {"mean": pair[0], "variance": pair[1]}


def _from_legacy(old: _LegacyBaseline) -> Baseline:
    return {
        "windows": old["windows"],
        "last_window": old["last_window"],
        "severe_lines": _legacy_ewma(old["err"]),
        "templates": {tid: _legacy_template(hist) for tid, hist in old["t"].items()},
    }


def _legacy_template(old: _LegacyTemplate) -> TemplateHistory:
    return {
        "count": _legacy_ewma(old["c"]),
        "windows_seen": old["n"],
        "variables": {
            pos: {
                "mean": _legacy_ewma(var["m"]),
                "reference": var["ref"],
                "last_mean": var["last"],
                "rising_windows": var["up"],
                "windows_seen": var["n"],
            }
            for pos, var in old["num"].items()
        },
        "template": old["text"],
        "level": old["lv"],
        "last_seen_window": old["seen"],
        "total_count": old["total"],
        "first_seen": old["first"],
    }
