"""Deterministic signals: cheap, computed for every window, no LLM involved.

Each source keeps an adaptive baseline (exponentially weighted mean and
variance per template, per numeric variable, and of its error count) in a
plain dict that the detection agent stores in a changelog-backed table.
Signals compare a window against the baseline *before* the window updates it.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from typing import Any

from loglytics.schemas import Signal, TemplateCount, WindowDigest

ALPHA = 0.2  # fast EWMA: the "usual" level adapts within ~5 windows
SLOW_ALPHA = 0.03  # slow reference for gradual drifts (leaks)
WARMUP_WINDOWS = 3  # before this, every template is new and nothing is unusual
MIN_HISTORY = 4  # windows a template must have been seen in before spikes count
# EWMA variances start at zero and reach ~83% of the truth after 8 windows: range
# checks on numeric variables wait for that, or early noise looks like an anomaly.
MIN_NUMERIC_HISTORY = 8
QUIET_LEVELS = frozenset({"INFO", "DEBUG", "TRACE", "UNKNOWN", "NOTICE"})
SEVERE_LEVELS = frozenset({"ERROR", "CRITICAL", "FATAL", "ALERT", "EMERGENCY"})
HIGH_LEVELS = frozenset({"CRITICAL", "FATAL", "ALERT", "EMERGENCY"})
MAX_BASELINE_TEMPLATES = 2000

# Words that say something failed. A severe-level template without any of them
# is usually context (a register dump, a status line), not the failure itself.
FAILURE_WORDS = re.compile(
    r"error|fail|fatal|panic|exception|refused|denied|timed? ?out|timeout|abort|"
    r"terminat|crash|corrupt|unable|cannot|could not|lost|unreachable|interrupt|"
    r"killed|segfault|traceback|oom|out of memory|overflow|invalid|unavailable|broken",
    re.IGNORECASE,
)
STATUS_BEFORE = re.compile(r"(?:status|code)[=: ]?\s*$", re.IGNORECASE)
# A variable is a measurement (worth range checks) when a key names it (`latency_ms=`,
# `heap:`) or a unit follows it (`in <*> ms`); ids, addresses and counters are not.
KEYED_BEFORE = re.compile(r"[A-Za-z_][\w.]*\s?[=:]\s?$")
UNIT_AFTER = re.compile(
    r"^\s?(?:ms|msec|s|sec|secs|seconds|us|µs|ns|mb|kb|gb|mib|kib|gib|bytes|%)\b", re.IGNORECASE
)


@dataclass(frozen=True)
class TemplateSignals:
    """The signals of one template in one window, with what a finding needs of it."""

    template: TemplateCount
    signals: tuple[Signal, ...]


def new_baseline() -> dict[str, Any]:
    return {"windows": 0, "last_window": None, "err": [0.0, 0.0], "t": {}}


def _ewma(stat: list[float], value: float, alpha: float = ALPHA) -> None:
    mean, var = stat
    diff = value - mean
    incr = alpha * diff
    stat[0] = mean + incr
    stat[1] = (1 - alpha) * (var + diff * incr)


def _z(value: float, mean: float, var: float) -> float:
    return (value - mean) / math.sqrt(var + 1.0)


@functools.lru_cache(maxsize=4096)
def _measured_positions(template: str) -> frozenset[int]:
    parts = template.split("<*>")
    return frozenset(
        i
        for i in range(len(parts) - 1)
        if KEYED_BEFORE.search(parts[i][-32:]) or UNIT_AFTER.match(parts[i + 1][:12])
    )


@functools.lru_cache(maxsize=4096)
def _status_positions(template: str) -> tuple[int, ...]:
    """Indices of the variables that an HTTP-ish status or code precedes (cached: immutable)."""
    parts = template.split("<*>")[:-1]
    return tuple(i for i, part in enumerate(parts) if STATUS_BEFORE.search(part[-16:]))


def compute_signals(digest: WindowDigest, baseline: dict[str, Any]) -> list[TemplateSignals]:
    """Signals of a window against the source's baseline (the baseline is not modified)."""
    warmed = baseline["windows"] >= WARMUP_WINDOWS
    known: dict[str, Any] = baseline["t"]
    out: list[TemplateSignals] = []
    severe_total = sum(t.count for t in digest.templates if t.level in SEVERE_LEVELS)
    err_mean, err_var = baseline["err"]
    burst = severe_total >= max(5.0, err_mean + 3 * math.sqrt(err_var + 1.0)) and (
        not warmed or severe_total >= 2 * err_mean
    )
    status_lines = 0.0
    status_5xx = 0.0
    for tpl in digest.templates:
        sigs: list[Signal] = []
        hist = known.get(tpl.template_id)
        severe = tpl.level in SEVERE_LEVELS
        if severe and FAILURE_WORDS.search(tpl.template):
            sigs.append(
                Signal(
                    kind="error",
                    template_id=tpl.template_id,
                    detail=f"{tpl.count} {tpl.level} line(s)",
                    value=float(tpl.count),
                    score=1.0 if tpl.level in HIGH_LEVELS else 0.8,
                )
            )
            if burst:
                sigs.append(
                    Signal(
                        kind="error_burst",
                        template_id=tpl.template_id,
                        detail=f"{severe_total} severe lines in the window (usual {err_mean:.1f})",
                        value=float(severe_total),
                        score=min(1.0, severe_total / max(1.0, 4 * err_mean + 5)),
                    )
                )
        failing = FAILURE_WORDS.search(tpl.template) is not None
        if tpl.new and warmed and failing and tpl.level not in QUIET_LEVELS:
            sigs.append(
                Signal(
                    kind="new_template",
                    template_id=tpl.template_id,
                    detail=f"first seen for this source ({tpl.level})",
                    value=float(tpl.count),
                    score=0.7,
                )
            )
        if hist is not None and hist["n"] >= MIN_HISTORY:
            mean, var = hist["c"]
            z = _z(tpl.count, mean, var)
            if z >= 4.0 and tpl.count >= 3 * mean and tpl.count >= 10:
                sigs.append(
                    Signal(
                        kind="spike",
                        template_id=tpl.template_id,
                        detail=f"{tpl.count} lines vs usual {mean:.1f}",
                        value=float(tpl.count),
                        score=min(1.0, z / 10),
                    )
                )
            measured = _measured_positions(tpl.template)
            for stat in tpl.numeric:
                if stat.position not in measured:
                    continue
                nh = hist["num"].get(str(stat.position))
                if nh is None or nh["n"] < MIN_NUMERIC_HISTORY:
                    continue
                nmean, nvar = nh["m"]
                nz = _z(stat.mean, nmean, nvar)
                ratio = stat.mean / nmean if nmean > 0 else 0.0
                # Only variables that are usually steady (ids, addresses and counters
                # jump around by nature and would cry wolf).
                steady = nmean > 0 and math.sqrt(nvar) <= 0.5 * nmean
                if steady and abs(nz) >= 4.0 and (ratio >= 3.0 or (0 < ratio <= 1 / 3)):
                    sigs.append(
                        Signal(
                            kind="numeric_outlier",
                            template_id=tpl.template_id,
                            detail=(
                                f"variable #{stat.position} mean {stat.mean:.1f} "
                                f"vs usual {nmean:.1f}"
                            ),
                            value=stat.mean,
                            score=min(1.0, abs(nz) / 10),
                        )
                    )
                # Growth of a very steady variable (a heap size, a queue length): small
                # against its noise for an outlier, but rising and clearly above the slow
                # reference level -- the shape of a leak.
                ref = nh["ref"]
                very_steady = nmean > 0 and math.sqrt(nvar) <= 0.1 * nmean
                rising = stat.mean > nh["last"] * 1.02
                outlier = bool(sigs) and sigs[-1].kind == "numeric_outlier"
                above = stat.mean >= max(1.05 * ref, ref + 6 * math.sqrt(nvar))
                if very_steady and rising and ref > 0 and above and not outlier:
                    sigs.append(
                        Signal(
                            kind="numeric_trend",
                            template_id=tpl.template_id,
                            detail=(
                                f"variable #{stat.position} rising for {nh['up'] + 1} windows: "
                                f"{stat.mean:.1f} vs reference {ref:.1f}"
                            ),
                            value=stat.mean,
                            score=min(1.0, stat.mean / ref - 1.0),
                        )
                    )
        for pos in _status_positions(tpl.template):
            stat_at = next((s for s in tpl.numeric if s.position == pos), None)
            if stat_at is None or not 100 <= stat_at.min <= 599:
                continue
            status_lines += tpl.count
            if stat_at.min >= 500:
                status_5xx += tpl.count
            elif stat_at.max >= 500 and stat_at.max > stat_at.min:
                # Two-valued positions (ok / server error) make this exact; others approximate.
                share = (stat_at.mean - stat_at.min) / (stat_at.max - stat_at.min)
                status_5xx += tpl.count * share
        if sigs:
            out.append(TemplateSignals(tpl, tuple(sigs)))
    if status_lines and status_5xx >= 5 and status_5xx / status_lines >= 0.05:
        top = max(
            (t for t in digest.templates if _status_positions(t.template)),
            key=lambda t: t.count,
        )
        out.append(
            TemplateSignals(
                top,
                (
                    Signal(
                        kind="http_5xx",
                        template_id=top.template_id,
                        detail=f"{status_5xx:.0f} of {status_lines:.0f} responses were 5xx",
                        value=status_5xx / status_lines,
                        score=min(1.0, 2 * status_5xx / status_lines),
                    ),
                ),
            )
        )
    if warmed:
        present = {t.template_id for t in digest.templates}
        for tid, hist in known.items():
            mean = hist["c"][0]
            if tid not in present and hist["n"] >= MIN_HISTORY * 2 and mean >= 20:
                gone = TemplateCount(
                    template_id=tid, template=hist["text"], count=0, level=hist["lv"]
                )
                drop = Signal(
                    kind="drop",
                    template_id=tid,
                    detail=f"absent this window (usually {mean:.0f} per window)",
                    value=0.0,
                    score=0.6,
                )
                out.append(TemplateSignals(gone, (drop,)))
    return out


def update_baseline(digest: WindowDigest, baseline: dict[str, Any]) -> None:
    """Absorb a window into the baseline (after its signals were computed)."""
    known: dict[str, Any] = baseline["t"]
    present = set()
    for tpl in digest.templates:
        present.add(tpl.template_id)
        hist = known.get(tpl.template_id)
        if hist is None:
            hist = known[tpl.template_id] = {
                "c": [float(tpl.count), 0.0],
                "n": 0,
                "num": {},
                "text": tpl.template[:300],
                "lv": tpl.level,
                "seen": baseline["windows"],
            }
        else:
            _ewma(hist["c"], float(tpl.count))
            hist["text"] = tpl.template[:300]
            hist["seen"] = baseline["windows"]
        hist["n"] += 1
        for stat in tpl.numeric:
            nh = hist["num"].get(str(stat.position))
            if nh is None:
                hist["num"][str(stat.position)] = {
                    "m": [stat.mean, 0.0],
                    "ref": stat.mean,
                    "last": stat.mean,
                    "up": 0,
                    "n": 1,
                }
                continue
            nh["up"] = nh["up"] + 1 if stat.mean > nh["last"] * 1.02 else 0
            nh["last"] = stat.mean
            _ewma(nh["m"], stat.mean)
            if nh["n"] < MIN_NUMERIC_HISTORY:
                nh["ref"] = nh["m"][0]  # the reference level starts from the settled mean
            else:
                nh["ref"] += SLOW_ALPHA * (stat.mean - nh["ref"])
            nh["n"] += 1
    for tid, hist in known.items():
        if tid not in present:
            _ewma(hist["c"], 0.0)
    severe = sum(t.count for t in digest.templates if t.level in SEVERE_LEVELS)
    _ewma(baseline["err"], float(severe))
    baseline["windows"] += 1
    baseline["last_window"] = digest.window_start
    if len(known) > MAX_BASELINE_TEMPLATES:
        # Bounded: forget the templates seen longest ago.
        for tid, _ in sorted(known.items(), key=lambda kv: kv[1]["seen"])[
            : len(known) - MAX_BASELINE_TEMPLATES
        ]:
            del known[tid]
