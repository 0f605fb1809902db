"""Error- and anomaly-detection prompts: the LLM judges compact candidates, never raw windows.

The candidates are the templates that deterministic signals flagged, each
with its level, count, signal kinds and one or two exemplar lines. The model
returns one verdict per candidate: a category, a severity, a title, a short
summary and a recommendation. Detection works without it (rules only); the
verdict adds judgement and wording, once per recurring pattern.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from loglytics.prompts.base import FewShot, PromptSpec
from loglytics.schemas import Severity


class Verdict(BaseModel):
    ref: int = Field(ge=0, le=99, description="the candidate's number")
    category: str = Field(max_length=32, description="e.g. database, network, memory, latency")
    severity: Severity
    title: str = Field(max_length=60)
    summary: str = Field(max_length=140)
    recommendation: str = Field(max_length=90)
    # An integer percent: llama.cpp's grammar cannot bound a float's digits, and a
    # small model then writes digits until max_tokens.
    confidence: int = Field(ge=0, le=100)


class Verdicts(BaseModel):
    verdicts: list[Verdict] = Field(max_length=8)


SYSTEM = (
    "You are a site reliability engineer triaging log patterns. Each candidate is a log "
    "template (variables shown as <*>) that automatic checks flagged, with its level, count, "
    "the checks that fired and example lines. For every candidate return one verdict: "
    "category, severity (low, medium, high, critical), a short title, a one-sentence summary "
    "of what is wrong, one concrete recommendation, and your confidence. Answer in JSON only."
)

EXAMPLE_USER = (
    "Source: payments-api (window 12:00-12:01)\n"
    "[0] ERROR x42 checks=error,error_burst\n"
    "    template: Connection to database <*> refused after <*> retries\n"
    "    e.g. Connection to database orders-db:5432 refused after 3 retries\n"
    "[1] INFO x380 checks=numeric_outlier (variable #1 mean 2410.0 vs usual 45.0)\n"
    "    template: GET <*> status=<*> latency_ms=<*>\n"
    "    e.g. GET /api/orders status=200 latency_ms=2388"
)

EXAMPLE = Verdicts(
    verdicts=[
        Verdict(
            ref=0,
            category="database",
            severity="critical",
            title="Database connections refused",
            summary="The service cannot reach orders-db; requests needing it fail.",
            recommendation="Check orders-db health and connection limits.",
            confidence=90,
        ),
        Verdict(
            ref=1,
            category="latency",
            severity="high",
            title="Request latency up fifty-fold",
            summary="Successful requests take about 2.4 s instead of 45 ms.",
            recommendation="Look for a slow dependency or saturation behind the API.",
            confidence=80,
        ),
    ]
)

DETECTION = PromptSpec(
    task="detect",
    system=SYSTEM,
    output=Verdicts,
    examples=(FewShot(EXAMPLE_USER, EXAMPLE),),
    max_tokens=90,
)
"""`max_tokens` is per candidate: the caller multiplies it by the number of candidates."""
