"""Token accounting records: one per LLM call, per tenant."""

from __future__ import annotations

from pydantic import Field

from loglytics.schemas.base import EpochSeconds, Record


class UsageRecord(Record):
    tenant: str
    tier: str
    task: str
    provider: str
    model: str
    prompt_tokens: int = Field(0, ge=0)
    completion_tokens: int = Field(0, ge=0)
    estimated: bool = False
    cached: bool = False
    latency_ms: float = 0.0
    ts: EpochSeconds
    request_id: str = ""
