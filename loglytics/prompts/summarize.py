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
    "matters most (errors, critical findings, noisy sources). Do not invent numbers or "
    "names; use only the ones given. With no lines and no findings, say there is no data. "
    "Reply with one compact JSON object."
)

EXAMPLE_USER = (
    "Metrics for the last 6 hours:\n"
    "lines: 5120 in 360 windows (flagged lines: 44)\n"
    "findings: 2 (high 1, low 1)\n"
    "top templates: 'job <*> done' x4900; 'unit-w8 retry <*>' x44\n"
    "recent findings: [high] Error burst: unit-w8 retry <*> (src-h1)"
)
EXAMPLE = SummaryNotes(
    headline="2 findings; unit-w8 retries drive the flagged lines.",
    highlights=["1 high finding on src-h1", "44 of 5120 lines were flagged"],
)
"""Names in the example (unit-w8, src-h1) are identifier-shaped on purpose: the grounding
check refuses any identifier the metrics do not contain, so a copied one cannot pass."""

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
    grounded: bool = True
