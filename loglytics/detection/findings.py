"""From signals to findings: grouping, severity rules, and the judgement key of each.

A finding is grounded in deterministic signals: its evidence names the
templates that fired. The LLM's verdict (when there is one) supplies the
category, wording and may raise the severity; without it the rules' own
wording stands and `model_used` is "rules".
"""

from __future__ import annotations

from dataclasses import dataclass

from loglytics.detection.signals import HIGH_LEVELS, SIGNAL_KINDS, TemplateSignals
from loglytics.prompts.detection import Verdict
from loglytics.schemas import Evidence, Finding, Severity, SignalKind, WindowDigest, finding_id

SEVERITY_ORDER: dict[Severity, int] = {"low": 0, "medium": 1, "high": 2, "critical": 3}
_ORDERED: tuple[Severity, ...] = ("low", "medium", "high", "critical")
MAX_FINDINGS_PER_WINDOW = 8
# Derived from the signal kinds' registry: kinds that make a finding an error, and
# kinds that qualify a pattern without changing what it means.
ERROR_KINDS: frozenset[SignalKind] = frozenset(k for k, s in SIGNAL_KINDS.items() if s.error)
MODIFIER_KINDS: frozenset[SignalKind] = frozenset(k for k, s in SIGNAL_KINDS.items() if s.modifier)


@dataclass(frozen=True)
class Candidate:
    """One would-be finding: a template and its signals in one window."""

    digest: WindowDigest
    item: TemplateSignals

    @property
    def kind(self) -> str:
        return "error" if self.kinds & ERROR_KINDS else "anomaly"

    @property
    def kinds(self) -> frozenset[SignalKind]:
        return frozenset(s.kind for s in self.item.signals)

    @property
    def judgement_key(self) -> str:
        """What a verdict depends on: the pattern and its class of problem, not the counts.

        Modifiers (a burst, first sight) do not change what the pattern means, so
        they do not make it a new question for the model.
        """
        if self.kind == "error":
            what = "error"
        else:
            what = "+".join(sorted(self.kinds - MODIFIER_KINDS)) or "new"
        return f"{self.item.template.template_id}|{what}"

    def rule_severity(self) -> Severity:
        tpl = self.item.template
        kinds = self.kinds
        if kinds & ERROR_KINDS:
            if tpl.level in HIGH_LEVELS:
                return "critical" if tpl.count >= 10 or "error_burst" in kinds else "high"
            if "error_burst" in kinds or "http_5xx" in kinds or tpl.count >= 20:
                return "high"
            return "medium"
        score = max(s.score for s in self.item.signals)
        if "numeric_outlier" in kinds or "spike" in kinds:
            return "high" if score >= 0.8 else "medium"
        if "drop" in kinds or "numeric_trend" in kinds:
            return "medium"
        return "low"


def candidates(digest: WindowDigest, items: list[TemplateSignals]) -> list[Candidate]:
    """The window's candidates, strongest first, bounded."""
    ranked = sorted(
        (Candidate(digest, item) for item in items),
        key=lambda c: (-SEVERITY_ORDER[c.rule_severity()], -c.item.template.count),
    )
    return ranked[:MAX_FINDINGS_PER_WINDOW]


def build_finding(
    cand: Candidate,
    verdict: Verdict | None,
    *,
    model_used: str,
    tokens_used: int,
    latency_ms: float,
    now: float,
) -> Finding:
    digest = cand.digest
    tpl = cand.item.template
    # The finding speaks of its (alphabetically) first error kind, or else first kind.
    primary = min(cand.kinds & ERROR_KINDS or cand.kinds)
    spec = SIGNAL_KINDS[primary]
    category, prefix, recommendation = spec.category, spec.title, spec.advice
    severity = cand.rule_severity()
    details = "; ".join(s.detail for s in cand.item.signals)
    title = f"{prefix}: {tpl.template[:90]}"
    summary = f"{tpl.level} template seen {tpl.count}x in {digest.source}: {details}"[:400]
    recommendations = [recommendation] if recommendation else []
    confidence = max(s.score for s in cand.item.signals)
    if verdict is not None:
        category = verdict.category.strip().lower()[:32] or category
        # The model may raise the rules' severity by one step when it is confident;
        # it never lowers it (detection must not depend on the model's judgement).
        if verdict.confidence >= 70 and SEVERITY_ORDER[verdict.severity] > SEVERITY_ORDER[severity]:
            severity = _ORDERED[min(SEVERITY_ORDER[severity] + 1, 3)]
        title = verdict.title.strip() or title
        summary = (
            (verdict.summary.strip() + f" ({details})")[:400]
            if verdict.summary.strip()
            else summary
        )
        if verdict.recommendation.strip():
            recommendations = [verdict.recommendation.strip(), *recommendations][:3]
        confidence = round((confidence + verdict.confidence / 100) / 2, 3)
    return Finding(
        finding_id=finding_id(
            digest.tenant, digest.source, digest.window_start, cand.kind, cand.judgement_key
        ),
        tenant=digest.tenant,
        source=digest.source,
        window_start=digest.window_start,
        window_end=digest.window_end,
        kind="error" if cand.kind == "error" else "anomaly",
        category=category,
        severity=severity,
        title=title[:200],
        summary=summary,
        evidence=Evidence(
            template_ids=[tpl.template_id],
            templates=[tpl.template[:500]],
            counts={tpl.template_id: tpl.count},
            exemplars=[e[:300] for e in tpl.exemplars[:3]],
            signals=list(cand.item.signals),
        ),
        recommendations=recommendations,
        confidence=min(1.0, max(0.0, confidence)),
        model_used=model_used,
        tokens_used=tokens_used,
        latency_ms=latency_ms,
        created_at=now,
    )
