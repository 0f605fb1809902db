"""Typed read helpers for the rest of the app (API, agents, CLI).

Why here and not inline SQL elsewhere: every read of a ReplacingMergeTree must
use ``FINAL`` (or the deduplicating views) to count right before merges, and every
tenant-facing read must filter by tenant. Keeping those reads in one module makes
both rules reviewable in one place. The client is synchronous: from async code,
call these through ``asyncio.to_thread``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import orjson

from loglytics.schemas import Evidence, Finding
from loglytics.storage.client import Client
from loglytics.storage.rows import to_datetime
from loglytics.storage.tables import FINDINGS

__all__ = [
    "count_findings",
    "findings_for",
    "get_finding",
    "tokens_by_tenant",
    "usage_summary",
]

MAX_FINDINGS = 1000

_FINDING_SELECT = ", ".join(FINDINGS.insert_columns)


def _epoch(value: datetime) -> float:
    """Columns are UTC; clickhouse-connect may hand back naive datetimes for them."""
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


def _finding(row: dict[str, Any]) -> Finding:
    evidence = orjson.loads(row["evidence"]) if row["evidence"] else {}
    return Finding(
        finding_id=row["finding_id"],
        tenant=row["tenant"],
        source=row["source"],
        window_start=_epoch(row["window_start"]),
        window_end=_epoch(row["window_end"]),
        kind=row["kind"],
        category=row["category"],
        severity=row["severity"],
        title=row["title"],
        summary=row["summary"],
        evidence=Evidence.model_validate(evidence),
        recommendations=list(row["recommendations"]),
        confidence=min(1.0, max(0.0, float(row["confidence"]))),
        model_used=row["model_used"],
        tokens_used=int(row["tokens_used"]),
        latency_ms=float(row["latency_ms"]),
        created_at=_epoch(row["created_at"]),
        schema_version=int(row["schema_version"]),
    )


def count_findings(client: Client, tenant: str | None = None) -> int:
    """Distinct findings (``FINAL`` collapses replays), for one tenant or all."""
    if tenant is None:
        return int(client.query("SELECT count() FROM findings FINAL").result_rows[0][0])
    result = client.query(
        "SELECT count() FROM findings FINAL WHERE tenant = {tenant:String}",
        parameters={"tenant": tenant},
    )
    return int(result.result_rows[0][0])


def findings_for(
    client: Client, tenant: str, since: float | datetime = 0.0, limit: int = 100
) -> list[Finding]:
    """A tenant's findings whose window started at or after ``since``, newest first."""
    since_dt = since if isinstance(since, datetime) else to_datetime(since)
    result = client.query(
        f"SELECT {_FINDING_SELECT} FROM findings FINAL"
        " WHERE tenant = {tenant:String} AND window_start >= {since:DateTime64(3, 'UTC')}"
        " ORDER BY window_start DESC, finding_id LIMIT {limit:UInt32}",
        parameters={"tenant": tenant, "since": since_dt, "limit": max(0, min(limit, MAX_FINDINGS))},
    )
    return [_finding(row) for row in result.named_results()]


def get_finding(client: Client, tenant: str, finding_id: str) -> Finding | None:
    """One finding by id, only if it belongs to ``tenant`` (ids are guessable hashes)."""
    result = client.query(
        f"SELECT {_FINDING_SELECT} FROM findings FINAL"
        " WHERE tenant = {tenant:String} AND finding_id = {finding_id:String} LIMIT 1",
        parameters={"tenant": tenant, "finding_id": finding_id},
    )
    rows = list(result.named_results())
    return _finding(rows[0]) if rows else None


def usage_summary(client: Client, tenant: str) -> list[dict[str, Any]]:
    """Per day and model: calls and tokens (from the deduplicating ``v_usage_daily``)."""
    result = client.query(
        "SELECT day, model, calls, prompt_tokens, completion_tokens, total_tokens,"
        " cached_calls, estimated_calls FROM v_usage_daily"
        " WHERE tenant = {tenant:String} ORDER BY day, model",
        parameters={"tenant": tenant},
    )
    out: list[dict[str, Any]] = []
    for row in result.named_results():
        day = row["day"]
        row["day"] = day.isoformat() if isinstance(day, date) else str(day)
        out.append({k: (int(v) if isinstance(v, int) else v) for k, v in row.items()})
    return out


def tokens_by_tenant(client: Client) -> dict[str, int]:
    """Total tokens per tenant, all time (operator view; not for tenant-facing APIs)."""
    result = client.query(
        "SELECT tenant, sum(total_tokens) FROM v_tokens_daily GROUP BY tenant ORDER BY tenant"
    )
    return {str(tenant): int(total) for tenant, total in result.result_rows}
