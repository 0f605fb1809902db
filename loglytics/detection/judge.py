"""LLM judgement, once per recurring pattern.

Verdicts are cached by each candidate's judgement key (template id plus the
kinds of signal, not the counts), so the same pattern recurring in later
windows, or in a replay of the same data, costs no tokens. New candidates
are judged a few at a time in one prompt. When the pool refuses (quota,
every provider down, invalid output) the candidates simply get no verdict:
their findings are emitted from the rules.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Protocol, TypedDict, cast

from loglytics.detection.findings import Candidate
from loglytics.detection.grounding import verdict_failures
from loglytics.prompts.detection import DETECTION, Verdict, Verdicts
from loglytics.prompts.grounding import Failure, GroundingMetrics, Outcome, repair_note
from loglytics.providers import InvalidOutput, LLMPool, PoolError, PoolResult
from loglytics.settings import Tier

log = logging.getLogger(__name__)

CANDIDATES_PER_PROMPT = 8
EXEMPLAR_CHARS = 160


class CachedVerdict(TypedDict):
    """What is remembered of one judged pattern (JSON, in a changelog-backed table)."""

    verdict: dict[str, object] | None  # the model's `Verdict`; None: judged, nothing usable
    model: str  # the model that judged it ("rules" when none did)


class VerdictCache(Protocol):
    """Where verdicts are remembered, by judgement key (a dict in tests, a table in workers).

    `get` returns what was stored, in whichever form it was stored (`restore_verdict`
    reads both).
    """

    def get(self, key: str) -> object: ...

    def __setitem__(self, key: str, value: CachedVerdict) -> None: ...


class _LegacyVerdict(TypedDict):
    """The form verdicts were cached in before the state had named keys."""

    v: dict[str, object] | None
    m: str


def restore_verdict(row: object) -> CachedVerdict | None:
    """A cached verdict in named form, whether stored in it or in the legacy `{"v","m"}`."""
    if not row:
        return None
    if isinstance(row, dict) and "v" in row:
        old = cast(_LegacyVerdict, row)
        return {"verdict": old["v"], "model": old["m"]}
    return cast(CachedVerdict, row)


@dataclass(frozen=True)
class Judgement:
    verdict: Verdict | None
    model_used: str
    tokens: int
    latency_ms: float


RULES = Judgement(None, "rules", 0, 0.0)


def render(cands: list[Candidate]) -> str:
    """The compact prompt body: one numbered entry per candidate, never raw floods."""
    first = cands[0].digest
    lines = [
        f"Source: {first.source} (window {time.strftime('%H:%M', time.gmtime(first.window_start))}"
        f"-{time.strftime('%H:%M', time.gmtime(first.window_end))})"
    ]
    for i, cand in enumerate(cands):
        tpl = cand.item.template
        details = "; ".join(s.detail for s in cand.item.signals)
        lines.append(
            f"[{i}] {tpl.level} x{tpl.count} checks={','.join(sorted(cand.kinds))} ({details})"
        )
        lines.append(f"    template: {tpl.template[:300]}")
        if tpl.exemplars:
            lines.append(f"    e.g. {tpl.exemplars[0][:EXEMPLAR_CHARS]}")
    return "\n".join(lines)


def split_cached(
    cands: list[Candidate], cache: VerdictCache
) -> tuple[dict[str, Judgement], list[Candidate]]:
    """Judgements already known (free), and one candidate per pattern still to judge."""
    known: dict[str, Judgement] = {}
    fresh: dict[str, Candidate] = {}
    for cand in cands:
        key = cand.judgement_key
        if key in known or key in fresh:
            continue
        hit = restore_verdict(cache.get(key))
        if hit is not None:
            stored = hit["verdict"]
            verdict = Verdict.model_validate(stored) if stored is not None else None
            known[key] = Judgement(verdict, hit["model"], 0, 0.0)
        else:
            fresh[key] = cand
    return known, list(fresh.values())


async def judge_fresh(
    pool: LLMPool | None,
    tenant: str,
    tier: Tier,
    fresh: list[Candidate],
    cache: VerdictCache,
    grounding: GroundingMetrics | None = None,
) -> dict[str, Judgement]:
    """Ask the model about new patterns, a few per prompt; remember what it said."""
    out: dict[str, Judgement] = {}
    for start in range(0, len(fresh), CANDIDATES_PER_PROMPT):
        chunk = fresh[start : start + CANDIDATES_PER_PROMPT]
        out.update(await _judge_chunk(pool, tenant, tier, chunk, cache, grounding))
    return out


async def judge(
    pool: LLMPool | None,
    tenant: str,
    tier: Tier,
    cands: list[Candidate],
    cache: VerdictCache,
    grounding: GroundingMetrics | None = None,
) -> dict[str, Judgement]:
    """A judgement per judgement key: cached ones free, new ones asked, failures as rules."""
    known, fresh = split_cached(cands, cache)
    known.update(await judge_fresh(pool, tenant, tier, fresh, cache, grounding))
    for cand in cands:
        known.setdefault(cand.judgement_key, RULES)
    return known


async def _judge_chunk(
    pool: LLMPool | None,
    tenant: str,
    tier: Tier,
    chunk: list[Candidate],
    cache: VerdictCache,
    grounding: GroundingMetrics | None = None,
) -> dict[str, Judgement]:
    if pool is None:
        return {}
    try:
        result = await pool.complete(
            tenant=tenant,
            tier=tier,
            task="detect",
            messages=DETECTION.messages(render(chunk)),
            output=Verdicts,
            max_tokens=DETECTION.max_tokens * len(chunk),
            temperature=0.0,
        )
    except InvalidOutput:
        # The model was asked and failed even after a repair: asking again about the
        # same pattern would fail the same way, so it is remembered as judged.
        log.info("invalid LLM output for %s: rules only", tenant)
        for cand in chunk:
            cache[cand.judgement_key] = {"verdict": None, "model": "rules"}
        return {}
    except PoolError as exc:
        # Quota or providers down: transient, so nothing is remembered.
        log.info("no LLM verdict for %s (%s): rules only", tenant, exc.error)
        return {}
    verdicts, spent = await _grounded(pool, tenant, tier, chunk, result, grounding)
    share = (result.usage.total + spent) // max(1, len(chunk))
    out: dict[str, Judgement] = {}
    for i, cand in enumerate(chunk):
        verdict = verdicts.get(i)
        # A candidate the model skipped was still judged: remember that too, so a
        # recurring pattern never costs a second prompt.
        model = result.model if verdict is not None else "rules"
        out[cand.judgement_key] = Judgement(verdict, model, share, result.latency_ms)
        cache[cand.judgement_key] = {
            "verdict": verdict.model_dump() if verdict is not None else None,
            "model": model,
        }
    return out


def candidate_texts(cand: Candidate) -> list[str]:
    """What the model was shown about a candidate: its words are what a verdict may use."""
    tpl = cand.item.template
    details = "; ".join(s.detail for s in cand.item.signals)
    return [tpl.template, *tpl.exemplars, details, cand.digest.source, f"{tpl.level} x{tpl.count}"]


def _failures(chunk: list[Candidate], verdicts: list[Verdict]) -> dict[int, tuple[Failure, ...]]:
    """Each candidate's verdict problems; a candidate the model skipped has none."""
    out: dict[int, tuple[Failure, ...]] = {}
    for v in verdicts:
        if not 0 <= v.ref < len(chunk):
            out[v.ref] = (Failure("index", str(v.ref)),)
        elif v.ref not in out:
            out[v.ref] = verdict_failures(v, candidate_texts(chunk[v.ref]))
    return out


async def _grounded(
    pool: LLMPool,
    tenant: str,
    tier: Tier,
    chunk: list[Candidate],
    result: PoolResult,
    grounding: GroundingMetrics | None,
) -> tuple[dict[int, Verdict], int]:
    """The chunk's grounded verdicts by ref after at most one repair round, and its tokens."""
    first = {v.ref: v for v in result.data_as(Verdicts).verdicts if 0 <= v.ref < len(chunk)}
    failed = {ref: f for ref, f in _failures(chunk, list(first.values())).items() if f}
    kept = {ref: v for ref, v in first.items() if ref not in failed}
    fixed: dict[int, Verdict] = {}
    spent = 0
    if failed:
        note = "\n".join(f"[{ref}] {repair_note(f)}" for ref, f in sorted(failed.items()))
        messages = [
            *DETECTION.messages(render(chunk)),
            {"role": "assistant", "content": result.text},
            {"role": "user", "content": note},
        ]
        try:
            again = await pool.complete(
                tenant=tenant,
                tier=tier,
                task="detect",
                messages=messages,
                output=Verdicts,
                max_tokens=DETECTION.max_tokens * len(chunk),
                temperature=0.0,
            )
        except (InvalidOutput, PoolError):
            again = None
        if again is not None:
            spent = again.usage.total
            redone = {v.ref: v for v in again.data_as(Verdicts).verdicts if v.ref in failed}
            problems = _failures(chunk, list(redone.values()))
            fixed = {ref: v for ref, v in redone.items() if not problems.get(ref)}
    for ref in first:
        outcome: Outcome = (
            "first_try" if ref in kept else "repaired" if ref in fixed else "fell_back"
        )
        if outcome == "fell_back":
            # Wording about something else (often the prompt's example): dropped whole,
            # counted, and remembered as judged so the pattern is not asked about again.
            pool.metrics.errors.labels(provider=result.provider, kind="ungrounded_verdict").inc()
        if grounding is not None:
            grounding.record("detect", result.provider, outcome, spent if ref in failed else 0)
    return {**kept, **fixed}, spent
