"""Grounded wording: a verdict copied from the prompt's example, or about something else, is
dropped and counted; the finding keeps the rules' wording (no services needed)."""

from __future__ import annotations

from typing import Any

from loglytics.detection.baseline import new_baseline
from loglytics.detection.findings import build_finding, candidates
from loglytics.detection.grounding import grounded
from loglytics.detection.judge import judge
from loglytics.detection.signals import compute_signals
from loglytics.prompts.detection import EXAMPLE, Verdict, Verdicts
from loglytics.providers import PoolResult
from loglytics.providers.metrics import PoolMetrics
from loglytics.schemas import TemplateCount, TokenUsage, WindowDigest

LEAK = "GC pause <*> ms heap_used_mb=<*>"
LEAK_LINES = ["GC pause 12 ms heap_used_mb=2210"]
DB = "Connection to database <*> refused after <*> retries (pool active=<*> idle=<*>)"
DB_LINES = ["Connection to database orders-db:5432 refused after 3 retries (pool active=19 idle=0)"]


def verdict(title: str, summary: str, category: str = "memory") -> Verdict:
    return Verdict(
        ref=0,
        category=category,
        severity="high",
        title=title,
        summary=summary,
        recommendation="Look.",
        confidence=80,
    )


def test_the_demos_leak_titled_with_the_example_is_rejected() -> None:
    copied = verdict(
        "The service cannot reach orders-db; requests fail",
        "The service cannot reach orders-db; requests needing it fail.",
        "database",
    )
    assert not grounded(copied, [LEAK, *LEAK_LINES])
    assert not grounded(EXAMPLE.verdicts[1], [LEAK, *LEAK_LINES])


def test_wording_about_the_candidate_is_kept() -> None:
    good = verdict("Heap keeps growing", "heap_used_mb rises steadily across GC pauses.")
    assert grounded(good, [LEAK, *LEAK_LINES])
    # The example's own database case, met for real, may use the words the candidate has.
    db = verdict("Database connections refused", "Connection to database refused.", "database")
    assert grounded(db, [DB, *DB_LINES])


def test_a_four_word_phrase_from_the_example_is_copying() -> None:
    # Shares "heap" with the candidate, but lifts the example's summary phrase.
    lifted = verdict("Heap growth", "Successful requests take about 2.4 s instead of heap.")
    assert not grounded(lifted, [LEAK, *LEAK_LINES])


class OnePool:
    """Answers every prompt with one verdict per candidate; has the pool's metrics."""

    def __init__(self, answer: Verdict) -> None:
        self.answer = answer
        self.metrics = PoolMetrics()

    async def complete(self, **kw: Any) -> PoolResult:
        n = kw["messages"][-1]["content"].count("\n[")
        verdicts = Verdicts(
            verdicts=[self.answer.model_copy(update={"ref": i}) for i in range(n + 1)]
        )
        return PoolResult(
            text=verdicts.model_dump_json(),
            data=verdicts,
            usage=TokenUsage(prompt_tokens=10, completion_tokens=5),
            provider="fake",
            model="fake-model",
            latency_ms=1.0,
        )


async def test_an_ungrounded_verdict_is_dropped_counted_and_remembered() -> None:
    tpl = TemplateCount(template_id="db", template=DB, count=30, level="ERROR", exemplars=DB_LINES)
    d = WindowDigest(
        tenant="t", source="s", window_start=0.0, window_end=60.0, line_count=30, templates=[tpl]
    )
    cands = candidates(d, compute_signals(d, new_baseline()))
    copied = verdict("Request latency up fifty-fold", "Successful requests take about 2.4 s.")
    pool = OnePool(copied)
    cache: dict[str, Any] = {}
    (j,) = (await judge(pool, "t", "free", cands, cache)).values()  # type: ignore[arg-type]
    assert j.verdict is None and j.model_used == "rules"
    counted = pool.metrics.errors.labels(provider="fake", kind="ungrounded_verdict")
    assert counted._value.get() == 1
    assert all(v["verdict"] is None for v in cache.values())
    finding = build_finding(cands[0], j.verdict, model_used=j.model_used, tokens_used=0,
                            latency_ms=0.0, now=1.0)  # fmt: skip
    assert finding.title.startswith("Errors") or finding.title.startswith("Error burst")
    assert "fifty" not in finding.title + finding.summary


def test_exemplar_lines_count_as_what_the_candidate_says() -> None:
    named = verdict("orders-db down", "orders-db is down.", "storage")
    assert not grounded(named, [DB])
    assert grounded(named, [DB, *DB_LINES])
