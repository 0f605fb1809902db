"""Query: a question about the tenant's stored data becomes a `QueryPlan`, never SQL.

The model's output schema is `QueryPlan` itself (sources and columns are closed
sets in its JSON schema); code compiles it to parameterised, tenant-filtered
SQL and writes the answer from the rows, so every number cited comes from
ClickHouse. `QueryAnswer` is the reply's `data`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from loglytics.prompts.base import FewShot, PromptSpec
from loglytics.storage.plan import MAX_LIMIT, Filter, QueryPlan, TimeRange

SYSTEM = (
    "You turn a question about the user's own stored log data into a JSON query plan. "
    "Sources: findings (detected problems: severity, category, title, summary, source, kind), "
    "windows (per source and minute: line_count, flagged_lines), templates (log message "
    "patterns: template, level, count), v_top_templates (template, total), "
    "v_findings_hourly (hour, severity, findings), llm_usage (task, model, prompt_tokens, "
    "completion_tokens). Count with aggregate count and group_by; add up with aggregate sum "
    "and metric_column. The plan only ever reads the user's own data. Reply with the plan only."
)

EXAMPLES = (
    FewShot(
        "Show recent critical findings",
        QueryPlan(
            source="findings",
            filters=[Filter(column="severity", op="=", value="critical")],
            time_range=TimeRange(last_hours=24),
            limit=10,
        ),
    ),
    FewShot(
        "How many findings per severity in the last day?",
        QueryPlan(
            source="findings",
            aggregate="count",
            group_by=["severity"],
            time_range=TimeRange(last_hours=24),
            order_by="value",
            limit=10,
        ),
    ),
)

QUERY = PromptSpec(task="query", system=SYSTEM, output=QueryPlan, examples=EXAMPLES, max_tokens=160)


def default_plan() -> QueryPlan:
    """What a useless or failed plan falls back to: the last week's findings per severity."""
    return QueryPlan(
        source="findings",
        aggregate="count",
        group_by=["severity"],
        time_range=TimeRange(last_hours=168),
        order_by="value",
        limit=10,
    )


class QueryAnswer(BaseModel):
    """The `data` of a query reply: the plan that ran, its rows, and the answer built on them."""

    question: str = Field(max_length=2000)
    plan: QueryPlan
    fallback: bool = Field(description="true when the model's plan was unusable or empty")
    fallback_reason: str = Field("", max_length=300)
    rows: list[dict[str, Any]] = Field(max_length=MAX_LIMIT)
    row_count: int = Field(ge=0)
    truncated: bool
    answer: str = Field(max_length=4000)
