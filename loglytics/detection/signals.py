"""Deterministic signals: cheap, computed for every window, no LLM involved.

Every signal kind is declared once, in `SIGNAL_KINDS`: what a finding says
about it (category, title, advice), whether it makes the finding an error or
only qualifies a pattern, and the short function that checks for it. Checks
compare a window against its source's baseline (see `detection.baseline`)
*before* the window updates it.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from loglytics.detection.baseline import (
    MIN_NUMERIC_HISTORY,
    RISE,
    SEVERE_LEVELS,
    Baseline,
    TemplateHistory,
    VariableHistory,
)
from loglytics.schemas import NumericStats, Signal, SignalKind, TemplateCount, WindowDigest

WARMUP_WINDOWS = 3  # before this, every template is new and nothing is unusual
MIN_HISTORY = 4  # windows a template must have been seen in before spikes count
QUIET_LEVELS = frozenset({"INFO", "DEBUG", "TRACE", "UNKNOWN", "NOTICE"})
HIGH_LEVELS = frozenset({"CRITICAL", "FATAL", "ALERT", "EMERGENCY"})

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


@dataclass(frozen=True, slots=True)
class CheckedWindow:
    """A window under check, with what several checks need of it and its baseline."""

    digest: WindowDigest
    baseline: Baseline
    warmed: bool  # past warm-up: new templates and absences mean something
    severe_lines: int  # lines at a severe level in the window
    burst: bool  # those are many more than the source usually logs

    @classmethod
    def of(cls, digest: WindowDigest, baseline: Baseline) -> CheckedWindow:
        warmed = baseline["windows"] >= WARMUP_WINDOWS
        severe = sum(t.count for t in digest.templates if t.level in SEVERE_LEVELS)
        usual = baseline["severe_lines"]
        mean, var = usual["mean"], usual["variance"]
        burst = severe >= max(5.0, mean + 3 * math.sqrt(var + 1.0)) and (
            not warmed or severe >= 2 * mean
        )
        return cls(digest, baseline, warmed, severe, burst)

    def history(self, tpl: TemplateCount) -> TemplateHistory | None:
        """The template's history once it is long enough for its counts to mean something."""
        hist = self.baseline["templates"].get(tpl.template_id)
        return hist if hist is not None and hist["windows_seen"] >= MIN_HISTORY else None


# A check of one template: its signal (or None), given the signals it already fired.
TemplateCheck = Callable[[CheckedWindow, TemplateCount, Sequence[Signal]], Signal | None]
# A check of one measured variable with a settled history, likewise.
VariableCheck = Callable[
    [TemplateCount, NumericStats, VariableHistory, Sequence[Signal]], Signal | None
]
# A check of the whole window: its signals, each with the template it is about.
WindowCheck = Callable[[CheckedWindow], list[TemplateSignals]]


@dataclass(frozen=True)
class PerTemplate:
    """A kind checked on each template of the window."""

    check: TemplateCheck


@dataclass(frozen=True)
class PerVariable:
    """A kind checked on each measured variable of a template with enough history."""

    check: VariableCheck


@dataclass(frozen=True)
class PerWindow:
    """A kind checked once over the whole window."""

    check: WindowCheck


@dataclass(frozen=True)
class SignalKindSpec:
    """What a signal kind means for a finding, and how it is checked."""

    category: str  # the finding's category when the model gives none
    title: str  # the finding's title prefix
    advice: str  # the rules' recommendation
    check: PerTemplate | PerVariable | PerWindow
    error: bool = False  # the finding is an error (else an anomaly)
    # Qualifies a pattern (a burst, first sight) without changing what it means: not
    # part of the question the model is asked, so it does not make a new one.
    modifier: bool = False


def _error(window: CheckedWindow, tpl: TemplateCount, fired: Sequence[Signal]) -> Signal | None:
    if tpl.level not in SEVERE_LEVELS or not FAILURE_WORDS.search(tpl.template):
        return None
    return Signal(
        kind="error",
        template_id=tpl.template_id,
        detail=f"{tpl.count} {tpl.level} line(s)",
        value=float(tpl.count),
        score=1.0 if tpl.level in HIGH_LEVELS else 0.8,
    )


def _error_burst(
    window: CheckedWindow, tpl: TemplateCount, fired: Sequence[Signal]
) -> Signal | None:
    """A burst is reported on the window's failing templates."""
    if not window.burst or not any(s.kind == "error" for s in fired):
        return None
    severe = window.severe_lines
    usual = window.baseline["severe_lines"]["mean"]
    return Signal(
        kind="error_burst",
        template_id=tpl.template_id,
        detail=f"{severe} severe lines in the window (usual {usual:.1f})",
        value=float(severe),
        score=min(1.0, severe / max(1.0, 4 * usual + 5)),
    )


def _new_template(
    window: CheckedWindow, tpl: TemplateCount, fired: Sequence[Signal]
) -> Signal | None:
    if not (tpl.new and window.warmed and FAILURE_WORDS.search(tpl.template)):
        return None
    if tpl.level in QUIET_LEVELS:
        return None
    return Signal(
        kind="new_template",
        template_id=tpl.template_id,
        detail=f"first seen for this source ({tpl.level})",
        value=float(tpl.count),
        score=0.7,
    )


def _spike(window: CheckedWindow, tpl: TemplateCount, fired: Sequence[Signal]) -> Signal | None:
    hist = window.history(tpl)
    if hist is None:
        return None
    mean = hist["count"]["mean"]
    z = _z(tpl.count, mean, hist["count"]["variance"])
    if not (z >= 4.0 and tpl.count >= 3 * mean and tpl.count >= 10):
        return None
    return Signal(
        kind="spike",
        template_id=tpl.template_id,
        detail=f"{tpl.count} lines vs usual {mean:.1f}",
        value=float(tpl.count),
        score=min(1.0, z / 10),
    )


def _numeric_outlier(
    tpl: TemplateCount, stat: NumericStats, hist: VariableHistory, fired: Sequence[Signal]
) -> Signal | None:
    mean, var = hist["mean"]["mean"], hist["mean"]["variance"]
    z = _z(stat.mean, mean, var)
    ratio = stat.mean / mean if mean > 0 else 0.0
    # Only variables that are usually steady (ids, addresses and counters jump
    # around by nature and would cry wolf).
    steady = mean > 0 and math.sqrt(var) <= 0.5 * mean
    if not (steady and abs(z) >= 4.0 and (ratio >= 3.0 or (0 < ratio <= 1 / 3))):
        return None
    return Signal(
        kind="numeric_outlier",
        template_id=tpl.template_id,
        detail=f"variable #{stat.position} mean {stat.mean:.1f} vs usual {mean:.1f}",
        value=stat.mean,
        score=min(1.0, abs(z) / 10),
    )


def _numeric_trend(
    tpl: TemplateCount, stat: NumericStats, hist: VariableHistory, fired: Sequence[Signal]
) -> Signal | None:
    """Growth of a very steady variable (a heap size, a queue length): small against its
    noise for an outlier, but rising and clearly above the slow reference level -- the
    shape of a leak. Not reported right after an outlier, which says more."""
    mean, var = hist["mean"]["mean"], hist["mean"]["variance"]
    ref = hist["reference"]
    very_steady = mean > 0 and math.sqrt(var) <= 0.1 * mean
    rising = stat.mean > hist["last_mean"] * RISE
    after_outlier = bool(fired) and fired[-1].kind == "numeric_outlier"
    # A young baseline can underestimate the variance of window means, so the rise must
    # also clear the sampling noise of this window's own mean (its spread over sqrt(n)).
    sampling = (stat.max - stat.min) / 4 / math.sqrt(max(stat.count, 1))
    above = stat.mean >= max(1.05 * ref, ref + 6 * math.sqrt(var), ref + 6 * sampling)
    if not (very_steady and rising and ref > 0 and above and not after_outlier):
        return None
    return Signal(
        kind="numeric_trend",
        template_id=tpl.template_id,
        detail=(
            f"variable #{stat.position} rising for {hist['rising_windows'] + 1} windows: "
            f"{stat.mean:.1f} vs reference {ref:.1f}"
        ),
        value=stat.mean,
        score=min(1.0, stat.mean / ref - 1.0),
    )


def _http_5xx(window: CheckedWindow) -> list[TemplateSignals]:
    """The share of responses that were server errors, on the busiest status template."""
    lines = 0.0
    errors = 0.0
    for tpl in window.digest.templates:
        for pos in _status_positions(tpl.template):
            stat = next((s for s in tpl.numeric if s.position == pos), None)
            if stat is None or not 100 <= stat.min <= 599:
                continue
            lines += tpl.count
            if stat.min >= 500:
                errors += tpl.count
            elif stat.max >= 500 and stat.max > stat.min:
                # Two-valued positions (ok / server error) make this exact; others approximate.
                share = (stat.mean - stat.min) / (stat.max - stat.min)
                errors += tpl.count * share
    if not (lines and errors >= 5 and errors / lines >= 0.05):
        return []
    top = max(
        (t for t in window.digest.templates if _status_positions(t.template)),
        key=lambda t: t.count,
    )
    signal = Signal(
        kind="http_5xx",
        template_id=top.template_id,
        detail=f"{errors:.0f} of {lines:.0f} responses were 5xx",
        value=errors / lines,
        score=min(1.0, 2 * errors / lines),
    )
    return [TemplateSignals(top, (signal,))]


def _drop(window: CheckedWindow) -> list[TemplateSignals]:
    """Templates that usually come in numbers and are absent from this window."""
    if not window.warmed:
        return []
    present = {t.template_id for t in window.digest.templates}
    out = []
    for tid, hist in window.baseline["templates"].items():
        mean = hist["count"]["mean"]
        if tid in present or hist["windows_seen"] < MIN_HISTORY * 2 or mean < 20:
            continue
        gone = TemplateCount(
            template_id=tid, template=hist["template"], count=0, level=hist["level"]
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


# Every signal kind, once. Checks run in this order (a template's signals are listed
# in it): per template, then per measured variable, then over the whole window.
SIGNAL_KINDS: dict[SignalKind, SignalKindSpec] = {
    "error": SignalKindSpec(
        "errors",
        "Errors",
        "Inspect the failing component; the exemplar lines show the failure.",
        PerTemplate(_error),
        error=True,
    ),
    "error_burst": SignalKindSpec(
        "errors",
        "Error burst",
        "Check recent deploys and dependencies of this service.",
        PerTemplate(_error_burst),
        error=True,
        modifier=True,
    ),
    "new_template": SignalKindSpec(
        "change",
        "New warning pattern",
        "Confirm whether a recent change introduced it.",
        PerTemplate(_new_template),
        modifier=True,
    ),
    "spike": SignalKindSpec(
        "volume",
        "Message spike",
        "Find what drives the surge of this message.",
        PerTemplate(_spike),
    ),
    "numeric_outlier": SignalKindSpec(
        "performance",
        "Value far outside its usual range",
        "Investigate the metric's cause.",
        PerVariable(_numeric_outlier),
    ),
    "numeric_trend": SignalKindSpec(
        "resources",
        "Steadily rising value",
        "Look for a leak or unbounded growth.",
        PerVariable(_numeric_trend),
    ),
    "http_5xx": SignalKindSpec(
        "availability",
        "Server errors",
        "Check the upstream services behind these requests.",
        PerWindow(_http_5xx),
        error=True,
    ),
    "drop": SignalKindSpec(
        "volume",
        "Message stopped",
        "Verify the component that used to log this is alive.",
        PerWindow(_drop),
    ),
}
_TEMPLATE_CHECKS = tuple(
    s.check.check for s in SIGNAL_KINDS.values() if isinstance(s.check, PerTemplate)
)
_VARIABLE_CHECKS = tuple(
    s.check.check for s in SIGNAL_KINDS.values() if isinstance(s.check, PerVariable)
)
_WINDOW_CHECKS = tuple(
    s.check.check for s in SIGNAL_KINDS.values() if isinstance(s.check, PerWindow)
)


def compute_signals(digest: WindowDigest, baseline: Baseline) -> list[TemplateSignals]:
    """Signals of a window against the source's baseline (the baseline is not modified)."""
    window = CheckedWindow.of(digest, baseline)
    out = []
    for tpl in digest.templates:
        fired = _template_signals(window, tpl)
        if fired:
            out.append(TemplateSignals(tpl, tuple(fired)))
    for window_check in _WINDOW_CHECKS:
        out.extend(window_check(window))
    return out


def _template_signals(window: CheckedWindow, tpl: TemplateCount) -> list[Signal]:
    fired: list[Signal] = []
    for template_check in _TEMPLATE_CHECKS:
        if (signal := template_check(window, tpl, fired)) is not None:
            fired.append(signal)
    for stat, hist in _settled_variables(window, tpl):
        for variable_check in _VARIABLE_CHECKS:
            if (signal := variable_check(tpl, stat, hist, fired)) is not None:
                fired.append(signal)
    return fired


def _settled_variables(
    window: CheckedWindow, tpl: TemplateCount
) -> Iterator[tuple[NumericStats, VariableHistory]]:
    """The template's measured variables whose history is long enough for range checks."""
    hist = window.history(tpl)
    if hist is None:
        return
    measured = _measured_positions(tpl.template)
    for stat in tpl.numeric:
        if stat.position not in measured:
            continue
        var = hist["variables"].get(str(stat.position))
        if var is not None and var["windows_seen"] >= MIN_NUMERIC_HISTORY:
            yield stat, var


def _z(value: float, mean: float, var: float) -> float:
    return (value - mean) / math.sqrt(var + 1.0)


@functools.lru_cache(maxsize=4096)
def _measured_positions(template: str) -> frozenset[int]:
    """Indices of the variables that are measurements (cached: templates are immutable)."""
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
