"""Findings: what alerting consumers and dashboards read."""

from __future__ import annotations

import hashlib
from typing import Literal

from pydantic import Field

from loglytics.schemas.base import EpochSeconds, Record

Severity = Literal["low", "medium", "high", "critical"]
SEVERITIES: tuple[Severity, ...] = ("low", "medium", "high", "critical")
FindingKind = Literal["error", "anomaly"]
# The deterministic signals' kinds; detection.signals.SIGNAL_KINDS says what each means.
SignalKind = Literal[
    "error",
    "error_burst",
    "new_template",
    "spike",
    "numeric_outlier",
    "numeric_trend",
    "http_5xx",
    "drop",
]


class Signal(Record):
    """A deterministic signal that fired on a window (cheap, no LLM)."""

    kind: SignalKind
    template_id: str | None = None
    detail: str = ""
    value: float = 0.0
    score: float = 0.0


class Evidence(Record):
    template_ids: list[str] = Field(default_factory=list)
    templates: list[str] = Field(default_factory=list)
    counts: dict[str, int] = Field(default_factory=dict)
    exemplars: list[str] = Field(default_factory=list)
    signals: list[Signal] = Field(default_factory=list)


class Finding(Record):
    finding_id: str
    tenant: str
    source: str
    window_start: EpochSeconds
    window_end: EpochSeconds
    kind: FindingKind
    category: str
    severity: Severity
    title: str
    summary: str
    evidence: Evidence = Field(default_factory=Evidence)
    recommendations: list[str] = Field(default_factory=list)
    confidence: float = Field(0.5, ge=0.0, le=1.0)
    model_used: str = "rules"
    tokens_used: int = 0
    latency_ms: float = 0.0
    created_at: EpochSeconds = 0.0
    # Set by the incidents stage on a finding of a muted pattern (see schemas.feedback):
    # stored, but it opens no incident and notifies no one.
    muted: bool = False


def finding_id(tenant: str, source: str, window_start: float, kind: str, what: str) -> str:
    """Deterministic id: a replay or restart re-derives the same id, so sinks dedupe."""
    raw = f"{tenant}\x1f{source}\x1f{window_start:.3f}\x1f{kind}\x1f{what}".encode()
    return hashlib.blake2b(raw, digest_size=12).hexdigest()
