"""Detection's named state and its signal-kind registry.

Baselines and cached verdicts live in changelog tables as JSON. Rows written
before the state had named keys (`"t","c","n","num",...` and `{"v","m"}`) must
still load, and detection must carry on from them exactly as from rows in the
named form.
"""

from __future__ import annotations

import asyncio
from typing import Any, get_args

import orjson
from kafka_io import delivered

from loglytics.detection.baseline import (
    Baseline,
    new_baseline,
    restore_baseline,
    update_baseline,
)
from loglytics.detection.findings import build_finding, candidates
from loglytics.detection.judge import CachedVerdict, restore_verdict, split_cached
from loglytics.detection.signals import SIGNAL_KINDS, compute_signals
from loglytics.detection.stage import DetectionStage
from loglytics.partitioning import state_key
from loglytics.prompts.detection import Verdict
from loglytics.schemas import Finding, NumericStats, SignalKind, TemplateCount, WindowDigest

# What the detection stage stored for `window(0)` .. `window(8)` before named state:
# captured by running that code (`update_baseline` in detection/signals.py, then the
# stage's `_template_rows`, which added "total" and "first") and dumping it as JSON.
LEGACY_BASELINE: dict[str, Any] = {
    "windows": 9,
    "last_window": 480.0,
    "err": [0.49152000000000007, 2.707528089600002],
    "t": {
        "req": {
            "c": [100.99352064000001, 0.7160949778939841],
            "n": 9,
            "num": {
                "1": {
                    "m": [45.36987904, 0.23306853576867825],
                    "ref": 45.448478336,
                    "last": 45.0,
                    "up": 0,
                    "n": 9,
                }
            },
            "text": "GET <*> latency_ms=<*>",
            "lv": "INFO",
            "seen": 8,
            "total": 909,
            "first": 0.0,
        },
        "db": {
            "c": [2.4576000000000002, 8.70580224],
            "n": 1,
            "num": {},
            "text": "Connection to <*> refused",
            "lv": "ERROR",
            "seen": 4,
            "total": 6,
            "first": 240.0,
        },
    },
}

VERDICT = Verdict(
    ref=0,
    category="latency",
    severity="high",
    title="Requests slow",
    summary="s",
    recommendation="r",
    confidence=80,
)


def window(i: int, latency: float = 45.0) -> WindowDigest:
    """Steady requests with a latency variable; a few refused connections in window 4."""
    templates = [
        TemplateCount(
            template_id="req",
            template="GET <*> latency_ms=<*>",
            count=100 + i % 3,
            level="INFO",
            numeric=[NumericStats(position=1, count=100, min=1, max=90, mean=latency + i % 2)],
        )
    ]
    if i == 4:
        templates.append(
            TemplateCount(
                template_id="db", template="Connection to <*> refused", count=6, level="ERROR"
            )
        )
    return WindowDigest(
        tenant="t",
        source="s",
        window_start=i * 60.0,
        window_end=i * 60.0 + 60,
        line_count=sum(t.count for t in templates),
        templates=templates,
    )


def fresh_baseline(windows: int) -> Baseline:
    baseline = new_baseline()
    for i in range(windows):
        update_baseline(window(i), baseline)
    return baseline


def stored(value: object) -> object:
    """A value as a JSON changelog gives it back."""
    return orjson.loads(orjson.dumps(value))


def test_the_signal_kind_literal_is_the_registry() -> None:
    assert tuple(SIGNAL_KINDS) == get_args(SignalKind)


def test_findings_speak_of_their_kind_as_the_registry_says() -> None:
    d = window(4)
    (cand,) = candidates(d, compute_signals(d, new_baseline()))
    finding = build_finding(cand, None, model_used="rules", tokens_used=0, latency_ms=0, now=1.0)
    spec = SIGNAL_KINDS["error"]
    assert finding.kind == "error" and finding.category == spec.category
    assert finding.title.startswith(spec.title + ": ")
    assert finding.recommendations == [spec.advice]


def test_a_legacy_baseline_loads_and_detection_continues_identically() -> None:
    restored = restore_baseline(stored(LEGACY_BASELINE))
    fresh = fresh_baseline(9)
    assert restored == stored(fresh)
    fired = []
    for i, latency in ((9, 2400.0), (10, 45.0), (11, 45.0), (12, 3000.0)):
        d = window(i, latency)
        signals = compute_signals(d, restored)
        assert signals == compute_signals(d, fresh)
        fired += [s.kind for item in signals for s in item.signals]
        update_baseline(d, restored)
        update_baseline(d, fresh)
    assert fired == ["numeric_outlier"]
    assert restored == fresh


def test_a_named_baseline_is_read_as_stored() -> None:
    baseline = fresh_baseline(3)
    assert restore_baseline(baseline) is baseline
    assert restore_baseline(stored(baseline)) == baseline
    assert restore_baseline(None) == new_baseline()


def test_legacy_verdicts_load() -> None:
    legacy = stored({"v": VERDICT.model_dump(), "m": "fake-model"})
    assert restore_verdict(legacy) == {"verdict": VERDICT.model_dump(), "model": "fake-model"}
    assert restore_verdict({"v": None, "m": "rules"}) == {"verdict": None, "model": "rules"}
    named: CachedVerdict = {"verdict": None, "model": "rules"}
    assert restore_verdict(named) is named
    assert restore_verdict(None) is None


def test_the_judge_reads_a_legacy_cache_without_asking_again() -> None:
    d = window(4)
    (cand,) = candidates(d, compute_signals(d, new_baseline()))
    cache = {cand.judgement_key: stored({"v": VERDICT.model_dump(), "m": "fake-model"})}
    known, fresh = split_cached([cand], cache)
    assert fresh == []
    judgement = known[cand.judgement_key]
    assert judgement.verdict == VERDICT and judgement.model_used == "fake-model"


class _Runtime:
    """What the stage needs of the runtime here: no sink, no pool."""

    sink = None
    pool = None

    async def ready(self) -> _Runtime:
        return self


class _Topic:
    def __init__(self) -> None:
        self.sent: list[Finding] = []

    async def send(self, key: bytes, value: bytes) -> asyncio.Future[None]:
        self.sent.append(Finding.from_bytes(value))
        return delivered()


async def test_the_stage_carries_on_from_legacy_rows_and_stores_named_ones() -> None:
    key = state_key("t", "s", "baseline").encode()
    baselines: dict[bytes, object] = {key: stored(LEGACY_BASELINE)}
    legacy_verdict = stored({"v": VERDICT.model_dump(), "m": "fake-model"})
    verdicts: dict[bytes, object] = {b"t#req|numeric_outlier": legacy_verdict}
    topic = _Topic()
    stage = DetectionStage(
        _Runtime(),  # type: ignore[arg-type]
        baselines=baselines,
        verdicts=verdicts,
        findings_out=topic,  # type: ignore[arg-type]
    )
    (finding,) = await stage.detect_source([window(9, latency=2400.0)])
    assert finding.model_used == "fake-model" and finding.title == VERDICT.title
    assert topic.sent == [finding]
    expected = fresh_baseline(9)
    update_baseline(window(9, latency=2400.0), expected)
    assert stored(baselines[key]) == stored(expected)
    assert await stage.detect_source([window(9, latency=2400.0)]) == []  # already absorbed
