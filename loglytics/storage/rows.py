"""Named-field row builders: app records as rows of the registered tables.

Why by name: a row is built with `Table.row`, which puts each value under its
column name and refuses a missing or unknown one, so a column added to or moved
in the registry cannot silently shift the values after it (the old 18-position
tuples could). The values are converted here (epoch seconds to UTC datetimes,
counts clamped to their column's range), the column order is the registry's.
"""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
from pydantic import BaseModel, Field

from loglytics.schemas import (
    Finding,
    Incident,
    IncidentFeedback,
    TenantRecord,
    UsageRecord,
    WindowDigest,
)
from loglytics.storage.registry import Row
from loglytics.storage.tables import (
    FINDINGS,
    INCIDENT_FEEDBACK,
    INCIDENTS,
    LLM_USAGE,
    TEMPLATES,
    TENANTS,
    WINDOW_STATS,
    WINDOWS,
)

__all__ = [
    "TemplateRow",
    "feedback_row",
    "finding_row",
    "incident_row",
    "template_row",
    "tenant_row",
    "to_datetime",
    "usage_row",
    "window_rows",
]

_U32 = 2**32 - 1


class TemplateRow(BaseModel):
    """A template's cumulative state for the ``templates`` table (latest ``last_seen`` wins).

    ``count`` is the total since ``first_seen``, not a per-window delta: the table
    replaces rather than sums, so a replayed snapshot cannot inflate it.
    """

    tenant: str = Field(max_length=64)
    source: str = Field(max_length=64)
    template_id: str
    template: str
    level: str = "UNKNOWN"
    first_seen: float
    last_seen: float
    count: int = Field(ge=0)


def to_datetime(ts: float) -> datetime:
    """Epoch seconds to an aware UTC datetime (what DateTime64(3, 'UTC') columns take)."""
    return datetime.fromtimestamp(ts, tz=UTC)


def finding_row(f: Finding) -> Row:
    """A `Finding` as a ``findings`` row (evidence as JSON text, tokens clamped to UInt32)."""
    return FINDINGS.row(
        tenant=f.tenant,
        finding_id=f.finding_id,
        source=f.source,
        window_start=to_datetime(f.window_start),
        window_end=to_datetime(f.window_end),
        kind=f.kind,
        category=f.category,
        severity=f.severity,
        title=f.title,
        summary=f.summary,
        evidence=orjson.dumps(f.evidence.model_dump(mode="json")).decode(),
        recommendations=list(f.recommendations),
        confidence=f.confidence,
        model_used=f.model_used,
        tokens_used=min(max(0, f.tokens_used), _U32),
        latency_ms=f.latency_ms,
        created_at=to_datetime(f.created_at),
        schema_version=f.schema_version,
        muted=f.muted,
    )


def window_rows(d: WindowDigest) -> tuple[list[Row], Row]:
    """One ``window_stats`` row per template and the window's ``windows`` totals row."""
    start, end = to_datetime(d.window_start), to_datetime(d.window_end)
    new_ids = set(d.new_template_ids)
    stats = [
        WINDOW_STATS.row(
            tenant=d.tenant,
            source=d.source,
            window_start=start,
            window_end=end,
            template_id=t.template_id,
            template=t.template,
            count=max(0, t.count),
            level=t.level,
            is_new=t.new or t.template_id in new_ids,
            line_count=max(0, d.line_count),
        )
        for t in d.templates
    ]
    total = WINDOWS.row(
        tenant=d.tenant,
        source=d.source,
        window_start=start,
        window_end=end,
        line_count=max(0, d.line_count),
        level_counts={k: max(0, v) for k, v in d.level_counts.items()},
        template_count=len(d.templates),
        new_templates=len(new_ids),
        flagged_lines=max(0, d.flagged_lines),
        closed_by=d.closed_by,
    )
    return stats, total


def template_row(t: TemplateRow) -> Row:
    return TEMPLATES.row(
        tenant=t.tenant,
        source=t.source,
        template_id=t.template_id,
        template=t.template,
        level=t.level,
        first_seen=to_datetime(t.first_seen),
        last_seen=to_datetime(t.last_seen),
        count=t.count,
    )


def usage_row(u: UsageRecord) -> Row:
    return LLM_USAGE.row(
        tenant=u.tenant,
        ts=to_datetime(u.ts),
        request_id=u.request_id,
        tier=u.tier,
        task=u.task,
        provider=u.provider,
        model=u.model,
        prompt_tokens=min(u.prompt_tokens, _U32),
        completion_tokens=min(u.completion_tokens, _U32),
        estimated=u.estimated,
        cached=u.cached,
        latency_ms=u.latency_ms,
    )


def tenant_row(t: TenantRecord) -> Row:
    """Without its key hashes: secrets stay in the tenants topic."""
    return TENANTS.row(
        tenant=t.tenant, tier=t.tier, enabled=t.enabled, updated_at=to_datetime(t.updated_at)
    )


def incident_row(i: Incident) -> Row:
    """An `Incident` event as an ``incidents`` row (the highest version wins on merge)."""
    return INCIDENTS.row(
        tenant=i.tenant,
        incident_id=i.incident_id,
        version=min(i.version, _U32),
        event=i.event,
        status=i.status,
        sources=list(i.sources),
        severity=i.severity,
        title=i.title,
        summary=i.summary,
        opened_at=to_datetime(i.opened_at),
        updated_at=to_datetime(i.updated_at),
        resolved_at=to_datetime(i.resolved_at) if i.resolved_at is not None else None,
        finding_ids=list(i.finding_ids),
        template_ids=list(i.template_ids),
        signal_kinds=list(i.signal_kinds),
        findings_count=min(i.findings_count, _U32),
        windows_count=min(i.windows_count, _U32),
        first_window_start=to_datetime(i.first_window_start),
        last_window_end=to_datetime(i.last_window_end),
        previous_incident_id=i.previous_incident_id or "",
        acknowledged=i.acknowledged,
        resolved_by=i.resolved_by,
        schema_version=i.schema_version,
    )


def feedback_row(fb: IncidentFeedback) -> Row:
    """An `IncidentFeedback` record as an ``incident_feedback`` row."""
    mute = fb.mute
    return INCIDENT_FEEDBACK.row(
        tenant=fb.tenant,
        feedback_id=fb.feedback_id,
        action=fb.action,
        incident_id=fb.incident_id or (mute.incident_id if mute else ""),
        mute_id=mute.mute_id if mute else "",
        template_ids=list(mute.template_ids) if mute else [],
        sources=list(mute.sources) if mute else [],
        reason=mute.reason if mute else "",
        until=to_datetime(mute.until) if mute and mute.until is not None else None,
        active=mute.active if mute else False,
        by=fb.by,
        created_at=to_datetime(fb.created_at),
    )
