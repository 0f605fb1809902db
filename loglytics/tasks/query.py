"""query: a question about the tenant's stored data, answered from ClickHouse.

The model fills a `QueryPlan` (its JSON schema is the output schema); code
compiles it with `run_plan`, which adds the tenant filter from the
authenticated request, parameterises every value and bounds the result. The
answer is written from the rows by a template, so every number in it is one
ClickHouse returned. A plan the model cannot produce, or one that fails or
matches nothing, falls back to `default_plan` — tenant-filtered the same way.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from loglytics.prompts.grounding import Ground, prompt_texts
from loglytics.prompts.query import QUERY, QueryAnswer, default_plan
from loglytics.storage.client import Client
from loglytics.storage.plan import (
    MAX_LOOKBACK_HOURS,
    Moment,
    QueryPlan,
    QueryResult,
    TimeRange,
    run_plan,
)
from loglytics.tasks.base import TaskContext, TaskResult, cut, invalid_input, parse_input
from loglytics.tasks.grounded import ask_grounded

log = logging.getLogger(__name__)

MAX_ROWS_IN_TEXT = 10


class QueryInput(BaseModel):
    """The question, and optionally the time range every plan is held to (else the plan's)."""

    model_config = ConfigDict(extra="forbid")

    question: str = Field(min_length=1)
    last_hours: int | None = Field(None, ge=1, le=MAX_LOOKBACK_HOURS)
    since: Moment | None = None
    until: Moment | None = None

    def time_range(self) -> TimeRange | None:
        if self.last_hours is None and self.since is None and self.until is None:
            return None
        try:
            return TimeRange(last_hours=self.last_hours, since=self.since, until=self.until)
        except ValueError:
            raise invalid_input("give last_hours or since, not both") from None


def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.2f}".rstrip("0").rstrip(".")
    text = str(value)
    return text if len(text) <= 80 else text[:79] + "…"


def _range(plan: QueryPlan) -> str:
    tr = plan.time_range
    if tr.since is not None:
        end = f" until {tr.until.isoformat()}" if tr.until else ""
        return f"since {tr.since.isoformat()}{end}"
    return f"the last {tr.last_hours or 24} hours"


def render_answer(plan: QueryPlan, rows: list[dict[str, Any]], note: str) -> str:
    """A plain answer that cites the rows it is built on (no model-written numbers)."""
    what = f"{plan.aggregate} by {', '.join(plan.group_by) or 'all'}"
    head = f"From {plan.source} over {_range(plan)}"
    head += f" ({what})" if plan.aggregate != "none" else ""
    if note:
        head += f" — {note}"
    if not rows:
        return head + ": no matching rows."
    lines = [f"{head}: {len(rows)} row(s)."]
    for row in rows[:MAX_ROWS_IN_TEXT]:
        lines.append("- " + ", ".join(f"{k}={_value(v)}" for k, v in row.items()))
    if len(rows) > MAX_ROWS_IN_TEXT:
        lines.append(f"… and {len(rows) - MAX_ROWS_IN_TEXT} more rows in data.rows")
    return "\n".join(lines)


def filter_values(plan: QueryPlan) -> list[str]:
    """What a plan claims about the question: the values it filters on."""
    out: list[str] = []
    for item in plan.filters:
        values = item.value if isinstance(item.value, list) else [item.value]
        out.extend(str(v) for v in values)
    return out


def grounded_plan(plan: QueryPlan, question: str) -> QueryPlan | None:
    """The plan if every value it filters on is written in the question (checked as text)."""
    asked = question.lower()
    return None if any(v.lower() not in asked for v in filter_values(plan)) else plan


async def query(ctx: TaskContext) -> TaskResult:
    given = parse_input(QueryInput, ctx.input)
    limit = QUERY.max_tokens  # the plan is internal: its size is ours, not the caller's
    question, truncated = cut(given.question, ctx.input_budget(QUERY, limit))
    tenant = ctx.tenant
    now = datetime.now(UTC)

    held = given.time_range()

    def hold(plan: QueryPlan) -> QueryPlan:
        return plan if held is None else plan.model_copy(update={"time_range": held})

    async def execute(plan: QueryPlan) -> QueryResult:
        def run(client: Client) -> QueryResult:
            return run_plan(client, plan, tenant, now=now)

        return await ctx.storage.run(run)

    reason = ""
    ground = Ground.of(question, prompt_texts(QUERY.system, QUERY.examples))
    examples = () if ctx.examples == "none" else None
    asked = await ask_grounded(
        ctx,
        QUERY,
        question,
        ground,
        QueryPlan,
        lambda p: (),
        max_tokens=limit,
        examples=examples,
        texts=filter_values,
    )
    picked = None if asked.value is None else grounded_plan(asked.value, question)
    plan = None if picked is None else hold(picked)
    if plan is None:
        reason = "the model's plan was invalid or not grounded in the question"
        log.info("query plan refused for %s", ctx.request.request_id)
    plan_grounded = plan is not None
    result: QueryResult | None = None
    if plan is not None:
        try:
            result = await execute(plan)
        except Exception as exc:  # a plan that validates may still fail in ClickHouse
            reason = "the model's plan could not run"
            log.info("query plan failed for %s: %s", ctx.request.request_id, exc)
        else:
            if not result.rows:
                reason = "the model's plan matched no rows"
    fallback = result is None or not result.rows
    if fallback:
        plan = hold(default_plan())
        result = await execute(plan)
    assert plan is not None and result is not None
    note = f"{reason}; showing the default: findings per severity" if fallback else ""
    answer = render_answer(plan, result.rows, note)
    data = QueryAnswer(
        question=cut(question, 2000)[0],
        plan=plan,
        fallback=fallback,
        fallback_reason=reason,
        rows=result.rows,
        row_count=len(result.rows),
        truncated=result.truncated,
        answer=cut(answer, 4000)[0],
    )
    return TaskResult(
        text=data.answer,
        data=data.model_dump(mode="json"),
        truncated=truncated or result.truncated,
        grounded=plan_grounded,
    )
