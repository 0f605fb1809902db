"""summarize: key metrics of a time range, computed by code, highlighted by the LLM.

Every metric is a tenant-filtered `QueryPlan` run through `run_plan`, so this
task reads ClickHouse through the same guarded layer as `query`. The model
only writes a headline and highlights from those metrics, and a highlight
that mentions a number the metrics do not contain is dropped: the numbers in
the reply come from code.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from loglytics.prompts.grounding import Ground, numbers, prompt_texts
from loglytics.prompts.summarize import SUMMARIZE, Summary, SummaryNotes
from loglytics.schemas import SEVERITIES
from loglytics.storage.client import Client
from loglytics.storage.plan import MAX_LOOKBACK_HOURS, Moment, QueryPlan, TimeRange, run_plan
from loglytics.tasks.base import TaskContext, TaskResult, cut, invalid_input, parse_input
from loglytics.tasks.grounded import ask_grounded


class SummarizeInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    last_hours: int | None = Field(None, ge=1, le=MAX_LOOKBACK_HOURS)
    since: Moment | None = None
    until: Moment | None = None

    def time_range(self) -> TimeRange:
        if self.since is None:
            return TimeRange(last_hours=self.last_hours or 24, until=self.until)
        if self.last_hours is not None:
            raise invalid_input("give last_hours or since, not both")
        return TimeRange(since=self.since, until=self.until)


def _plans(tr: TimeRange) -> dict[str, QueryPlan]:
    def agg(source: Any, aggregate: Any, metric: Any = None, **kw: Any) -> QueryPlan:
        return QueryPlan(
            source=source, aggregate=aggregate, metric_column=metric, time_range=tr, **kw
        )

    return {
        "lines": agg("windows", "sum", "line_count", limit=1),
        "flagged_lines": agg("windows", "sum", "flagged_lines", limit=1),
        "windows": agg("windows", "count", limit=1),
        "findings": agg("findings", "count", group_by=["severity"], limit=10),
        "new_templates": agg("v_new_templates", "count", limit=1),
        "llm_tokens": agg("llm_usage", "sum", "completion_tokens", limit=1),
        "top_templates": QueryPlan(
            source="v_top_templates",
            columns=["source", "template", "level", "total"],
            order_by="total",
            time_range=tr,
            limit=5,
        ),
        "top_findings": QueryPlan(
            source="findings",
            columns=["finding_id", "source", "severity", "category", "title"],
            time_range=tr,
            limit=5,
        ),
    }


def compute(client: Client, tenant: str, tr: TimeRange, now: datetime) -> dict[str, Any]:
    """All metrics of the range for `tenant` (each query tenant-filtered by `run_plan`)."""
    rows = {name: run_plan(client, plan, tenant, now=now).rows for name, plan in _plans(tr).items()}

    def scalar(name: str) -> int:
        found = rows[name]
        return int(found[0].get("value") or 0) if found else 0

    by_severity: dict[str, int] = {s: 0 for s in SEVERITIES}
    for row in rows["findings"]:
        by_severity[str(row["severity"])] = int(row["value"])
    return {
        "metrics": {
            "lines": scalar("lines"),
            "windows": scalar("windows"),
            "flagged_lines": scalar("flagged_lines"),
            "findings": sum(by_severity.values()),
            "findings_by_severity": by_severity,
            "new_templates": scalar("new_templates"),
            "llm_completion_tokens": scalar("llm_tokens"),
        },
        "top_templates": rows["top_templates"],
        "top_findings": rows["top_findings"],
    }


def describe(facts: dict[str, Any]) -> list[str]:
    """The metrics as lines: what the model reads and what the reply's text shows."""
    m = facts["metrics"]
    sev = ", ".join(f"{k} {v}" for k, v in m["findings_by_severity"].items() if v)
    lines = [
        f"lines: {m['lines']} in {m['windows']} windows (flagged lines: {m['flagged_lines']})",
        f"findings: {m['findings']}" + (f" ({sev})" if sev else ""),
        f"new templates: {m['new_templates']}",
    ]
    if facts["top_templates"]:
        tops = "; ".join(
            f"'{cut(str(t['template']), 60)[0]}' x{t['total']}" for t in facts["top_templates"]
        )
        lines.append(f"top templates: {tops}")
    if facts["top_findings"]:
        recent = "; ".join(
            f"[{f['severity']}] {cut(str(f['title']), 60)[0]} ({f['source']})"
            for f in facts["top_findings"]
        )
        lines.append(f"recent findings: {recent}")
    return lines


def grounded(text: str, allowed: set[str]) -> bool:
    """True if every number in `text` is one of the metrics' numbers (`allowed`)."""
    return numbers(text) <= {n.lstrip("0") or "0" for n in allowed}


def empty(metrics: dict[str, Any]) -> bool:
    return not metrics["lines"] and not metrics["findings"]


def computed_headline(metrics: dict[str, Any]) -> str:
    """The rules' headline: the figures themselves, and plainly so when there are none."""
    if empty(metrics):
        return "No log data in this range: 0 lines, 0 findings."
    return (
        f"{metrics['lines']} log lines and {metrics['findings']} findings "
        f"({metrics['findings_by_severity']['critical']} critical)"
    )


async def notes_for(ctx: TaskContext, prompt: str) -> SummaryNotes | None:
    """The model's headline and highlights, grounded in the metrics, or None."""
    ground = Ground.of(prompt, prompt_texts(SUMMARIZE.system, SUMMARIZE.examples))
    examples = () if ctx.examples == "none" else None
    asked = await ask_grounded(
        ctx,
        SUMMARIZE,
        prompt,
        ground,
        SummaryNotes,
        lambda notes: (),
        max_tokens=ctx.max_tokens(SUMMARIZE),
        examples=examples,
    )
    return asked.value


async def summarize(ctx: TaskContext) -> TaskResult:
    given = parse_input(SummarizeInput, ctx.input)
    try:
        tr = given.time_range()
    except ValueError as exc:
        raise invalid_input(str(exc)) from None
    now = datetime.now(UTC)
    start, end = tr.bounds(now)
    span = f"{start.isoformat(timespec='seconds')} to {(end or now).isoformat(timespec='seconds')}"
    tenant = ctx.tenant

    def run(client: Client) -> dict[str, Any]:
        return compute(client, tenant, tr, now)

    facts = await ctx.storage.run(run)
    lines = describe(facts)
    hours = max(1, round(((end or now) - start).total_seconds() / 3600))
    prompt = f"Metrics for the last {hours} hours:\n" + "\n".join(lines)
    m = facts["metrics"]
    headline = computed_headline(m)
    highlights: list[str] = []
    notes = None if empty(m) else await notes_for(ctx, prompt)
    if notes is not None:
        headline = notes.headline.strip() or headline
        highlights = [h.strip() for h in notes.highlights if h.strip()]
    summary = Summary(
        since=start.isoformat(timespec="seconds"),
        until=(end or now).isoformat(timespec="seconds"),
        metrics=m,
        top_templates=facts["top_templates"],
        top_findings=facts["top_findings"],
        headline=cut(headline, 100)[0],
        highlights=highlights,
        grounded=empty(m) or notes is not None,
    )
    text = "\n".join(
        [
            summary.headline,
            f"({span})",
            *(f"- {line}" for line in lines),
            *(f"* {h}" for h in highlights),
        ]
    )
    return TaskResult(
        text=text,
        data=summary.model_dump(mode="json"),
        grounded=None if empty(m) else summary.grounded,
    )
