"""Summarize: key metrics for a time range, computed by code, then highlighted by the LLM.

The model sees the metrics and writes a headline and up to three highlights;
it is never the source of a number in the reply. `Summary` is the reply's
`data`: the code's metrics next to the model's words.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field

from loglytics.prompts.base import FewShot, PromptSpec


class SummaryNotes(BaseModel):
    headline: str = Field(max_length=100)
    highlights: list[Annotated[str, Field(max_length=80)]] = Field(max_length=3)


SYSTEM = (
    "You write a short status summary of a system's logs from metrics that were already "
    "computed. Give a one-line headline and up to three highlights that point at what "
    "matters most (errors, critical findings, noisy sources). Do not invent numbers; use "
    "only the ones given. Reply with one compact JSON object."
)

EXAMPLE_USER = (
    "Metrics for the last 24 hours:\n"
    "lines: 120400 in 1440 windows (flagged lines: 310)\n"
    "findings: 7 (critical 1, high 2, medium 4)\n"
    "top templates: 'GET <*> 200' x90000; 'Connection to <*> refused' x300\n"
    "recent findings: [critical] Database connections refused (payments)"
)
EXAMPLE = SummaryNotes(
    headline="Mostly healthy traffic; one critical database outage in payments.",
    highlights=[
        "1 critical finding: database connections refused",
        "310 of 120400 lines were flagged",
    ],
)

SUMMARIZE = PromptSpec(
    task="summarize",
    system=SYSTEM,
    output=SummaryNotes,
    examples=(FewShot(EXAMPLE_USER, EXAMPLE),),
    max_tokens=160,
)


class Summary(BaseModel):
    """The `data` of a summarize reply."""

    since: str = Field(max_length=40)
    until: str = Field(max_length=40)
    metrics: dict[str, Any]
    top_templates: list[dict[str, Any]] = Field(max_length=10)
    top_findings: list[dict[str, Any]] = Field(max_length=10)
    headline: str = Field(max_length=100)
    highlights: list[str] = Field(max_length=3)
