"""Unit tests: signals, findings and the judgement economy (no services needed)."""

from __future__ import annotations

import time
from typing import Any

from mined_lines import add_lines, process_lines

from loglytics.bench.detection import BATCH, TENANT, load_bgl
from loglytics.detection.baseline import new_baseline, update_baseline
from loglytics.detection.findings import build_finding, candidates
from loglytics.detection.judge import RULES, judge
from loglytics.detection.signals import compute_signals
from loglytics.ingest.pipeline import Decoded, SourcePipeline
from loglytics.ingest.state import new_source_state
from loglytics.ingest.windows import closable, to_digest
from loglytics.prompts.detection import Verdict, Verdicts
from loglytics.providers import NoProviderAvailable, PoolResult
from loglytics.schemas import NumericStats, SignalKind, TemplateCount, TokenUsage, WindowDigest


def digest(start: float, templates: list[TemplateCount]) -> WindowDigest:
    return WindowDigest(
        tenant="t",
        source="s",
        window_start=start,
        window_end=start + 60,
        line_count=sum(t.count for t in templates),
        templates=templates,
    )


def tc(tid: str, text: str, count: int, level: str = "INFO", **kw: Any) -> TemplateCount:
    return TemplateCount(template_id=tid, template=text, count=count, level=level, **kw)


def run_windows(windows: list[list[TemplateCount]]) -> list[list[SignalKind]]:
    """Signal kinds fired per window, feeding the baseline as the agent does."""
    base = new_baseline()
    fired = []
    for i, tpls in enumerate(windows):
        d = digest(i * 60.0, tpls)
        fired.append(sorted({s.kind for item in compute_signals(d, base) for s in item.signals}))
        update_baseline(d, base)
    return fired


def normal(i: int, latency: float = 45.0, heap: float = 512.0) -> list[TemplateCount]:
    return [
        tc(
            "req",
            "GET <*> latency_ms=<*>",
            100 + (i % 3),
            numeric=[NumericStats(position=1, count=100, min=1, max=90, mean=latency + i % 2)],
        ),
        tc(
            "gc",
            "GC pause <*> ms heap_used_mb=<*>",
            10,
            numeric=[
                NumericStats(position=1, count=10, min=heap - 8, max=heap + 8, mean=heap + i % 3)
            ],
        ),
    ]


def test_quiet_traffic_fires_nothing() -> None:
    assert all(k == [] for k in run_windows([normal(i) for i in range(12)]))


def test_error_template_fires_error_and_burst() -> None:
    windows = [normal(i) for i in range(5)]
    windows.append([*normal(5), tc("db", "Connection to <*> refused", 40, "ERROR")])
    assert run_windows(windows)[-1] == ["error", "error_burst"]


def test_severe_line_without_failure_words_is_context_not_a_finding() -> None:
    windows = [normal(i) for i in range(5)]
    windows.append([*normal(5), tc("reg", "core configuration register: <*>", 3, "FATAL")])
    assert run_windows(windows)[-1] == []


def test_latency_spike_is_a_numeric_outlier() -> None:
    windows = [normal(i) for i in range(8)] + [normal(8, latency=2400.0)]
    assert "numeric_outlier" in run_windows(windows)[-1]


def test_gradual_heap_growth_is_a_trend() -> None:
    windows = [normal(i) for i in range(8)] + [normal(8, heap=600.0)]
    assert "numeric_trend" in run_windows(windows)[-1]


def test_message_spike_and_disappearance() -> None:
    windows = [normal(i) for i in range(10)]
    spike = normal(10)
    spike[0] = tc("req", "GET <*> latency_ms=<*>", 1500, numeric=spike[0].numeric)
    assert "spike" in run_windows([*windows, spike])[-1]
    assert "drop" in run_windows([*windows, [normal(10)[1]]])[-1]


def test_http_5xx_share() -> None:
    windows = [normal(i) for i in range(4)]
    windows.append(
        [
            tc(
                "http",
                "GET <*> status=<*> in <*> ms",
                100,
                numeric=[NumericStats(position=1, count=100, min=200, max=503, mean=260.6)],
            )
        ]
    )
    assert "http_5xx" in run_windows(windows)[-1]


def test_finding_ids_are_deterministic_and_verdicts_only_raise_severity() -> None:
    d = digest(0.0, [tc("db", "Connection to <*> refused", 3, "ERROR")])
    (cand,) = candidates(d, compute_signals(d, new_baseline()))
    a = build_finding(cand, None, model_used="rules", tokens_used=0, latency_ms=0, now=1.0)
    b = build_finding(cand, None, model_used="rules", tokens_used=0, latency_ms=0, now=2.0)
    assert a.finding_id == b.finding_id and a.severity == "medium"
    low = Verdict(
        ref=0,
        category="db",
        severity="low",
        title="t",
        summary="s",
        recommendation="r",
        confidence=90,
    )
    assert (
        build_finding(cand, low, model_used="m", tokens_used=1, latency_ms=1, now=3).severity
        == "medium"
    )
    high = low.model_copy(update={"severity": "critical"})
    assert (
        build_finding(cand, high, model_used="m", tokens_used=1, latency_ms=1, now=3).severity
        == "high"
    )


class FakePool:
    """Answers like the pool would; counts calls (the real pool is tested against llama.cpp)."""

    def __init__(self, fail: bool = False) -> None:
        self.calls = 0
        self.fail = fail

    async def complete(self, **kw: Any) -> PoolResult:
        self.calls += 1
        if self.fail:
            raise NoProviderAvailable("all down")
        n = kw["messages"][-1]["content"].count("\n[")
        verdicts = Verdicts(
            verdicts=[
                Verdict(  # grounded wording (it names what the candidate says)
                    ref=i,
                    category="network",
                    severity="high",
                    title="Connections refused",
                    summary="Connections are refused.",
                    recommendation="r",
                    confidence=80,
                )
                for i in range(n + 1)
            ]
        )
        return PoolResult(
            text=verdicts.model_dump_json(),
            data=verdicts,
            usage=TokenUsage(prompt_tokens=100, completion_tokens=50),
            provider="fake",
            model="fake-model",
            latency_ms=5.0,
        )


async def test_recurring_patterns_are_judged_once() -> None:
    d1 = digest(0.0, [tc("db", "Connection to <*> refused", 3, "ERROR")])
    d2 = digest(60.0, [tc("db", "Connection to <*> refused", 9, "ERROR")])
    cache: dict[str, Any] = {}
    pool = FakePool()
    c1 = candidates(d1, compute_signals(d1, new_baseline()))
    first = await judge(pool, "t", "free", c1, cache)  # type: ignore[arg-type]
    c2 = candidates(d2, compute_signals(d2, new_baseline()))
    second = await judge(pool, "t", "free", c2, cache)  # type: ignore[arg-type]
    assert pool.calls == 1
    (j1,) = first.values()
    (j2,) = second.values()
    assert j1.tokens == 150 and j1.model_used == "fake-model"
    assert j2.tokens == 0 and j2.verdict == j1.verdict


async def test_pool_down_means_rules_and_nothing_remembered() -> None:
    d = digest(0.0, [tc("db", "Connection to <*> refused", 3, "ERROR")])
    cache: dict[str, Any] = {}
    cands = candidates(d, compute_signals(d, new_baseline()))
    out = await judge(FakePool(fail=True), "t", "free", cands, cache)  # type: ignore[arg-type]
    assert list(out.values()) == [RULES] and cache == {}


def test_bgl_alerts_rules_only(loghub_dir: Any) -> None:
    """The detection bench's line-level scoring, in process: recall 1.0, precision > 0.41."""
    lines, alerts, _ = load_bgl(loghub_dir)
    pipe = SourcePipeline(TENANT, "bgl")
    state = new_source_state()
    digests: list[WindowDigest] = []
    tids: list[str] = []
    for i in range(0, len(lines), BATCH):
        decoded = Decoded(TENANT, "bgl", None, lines[i : i + BATCH])
        mined, _ = process_lines(pipe, decoded, time.time())
        tids += [m.template_id for m in mined]
        add_lines(state, mined, 60.0, 0.0)
        digests += [to_digest(TENANT, "bgl", w, "w") for w in closable(state, 0.0, idle=False)]
    digests += [to_digest(TENANT, "bgl", w, "i") for w in closable(state, 0.0, idle=True)]
    base = new_baseline()
    named: set[str] = set()
    for d in digests:
        for c in candidates(d, compute_signals(d, base)):
            named.add(pipe.miner.resolve(c.item.template.template_id))
        update_baseline(d, base)
    flags = [pipe.miner.resolve(t) in named for t in tids]
    tp = sum(f and a for f, a in zip(flags, alerts, strict=True))
    assert tp == sum(alerts), "every alert line must be flagged"
    assert tp / sum(flags) > 0.41
