"""One pool call as it goes: the checked request, its tier chain, cache key and spend so far.

Why a builder: every argument check (tier, messages, token limit, output
schema bounds) happens before the quota is touched, and the cache key and
the worst-case reservation are derived from the same cleaned request, so a
call is charged and cached for exactly what is sent.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from loglytics.providers.base import ChatRequest, ChatResult
from loglytics.providers.cache import cache_key
from loglytics.providers.results import PoolResult
from loglytics.providers.slots import ProviderSlot
from loglytics.providers.structured import json_schema_for
from loglytics.providers.tokens import estimate_messages
from loglytics.schemas import TokenUsage
from loglytics.settings import Tier


@dataclass(slots=True)
class PoolCall:
    """A call in flight; `usage`, `served` and `partial` fill in as providers answer."""

    tenant: str
    tier: Tier
    task: str
    request_id: str
    request: ChatRequest
    output: type[BaseModel] | None
    chain: list[ProviderSlot]
    key: str
    reserve_tokens: int
    call_id: str = ""
    started: float = field(default_factory=time.perf_counter)
    usage: TokenUsage = field(default_factory=TokenUsage)
    served: ChatResult | None = None
    # Text streamed from `partial_from` before a stream ended without its final result.
    partial: list[str] = field(default_factory=list)
    partial_from: tuple[str, str] = ("", "")

    def result(self, served: ChatResult, data: BaseModel | None, *, repaired: bool) -> PoolResult:
        """What the caller gets: `served`'s reply, charged everything the call used so far."""
        return PoolResult(
            text=served.text,
            data=data,
            usage=self.usage,
            provider=served.provider,
            model=served.model,
            latency_ms=(time.perf_counter() - self.started) * 1000.0,
            repaired=repaired,
            finish_reason=served.finish_reason,
        )


class CallBuilder:
    """Checks a call's arguments and shapes its request; remembers each output model's schema."""

    def __init__(
        self,
        tiers: Mapping[Tier, Sequence[ProviderSlot]],
        *,
        default_max_tokens: int,
        default_temperature: float,
    ) -> None:
        self._tiers = tiers
        self._default_max_tokens = default_max_tokens
        self._default_temperature = default_temperature
        self._schemas: dict[type[BaseModel], dict[str, Any]] = {}

    def _schema(self, output: type[BaseModel] | None) -> dict[str, Any] | None:
        if output is None:
            return None
        schema = self._schemas.get(output)
        if schema is None:
            schema = self._schemas[output] = json_schema_for(output)
        return schema

    def build(
        self,
        tenant: str,
        tier: Tier,
        task: str,
        messages: list[dict[str, str]],
        output: type[BaseModel] | None,
        max_tokens: int | None,
        temperature: float | None,
        request_id: str,
        call_id: str = "",
    ) -> PoolCall:
        """The call, or `ValueError` when the arguments themselves are wrong."""
        if tier not in self._tiers:
            raise ValueError(f"unknown tier {tier!r}")
        if not messages:
            raise ValueError("messages must not be empty")
        limit = max_tokens if max_tokens is not None else self._default_max_tokens
        if limit <= 0:
            raise ValueError("max_tokens must be positive")
        schema = self._schema(output)
        try:
            clean = [{"role": str(m["role"]), "content": str(m["content"])} for m in messages]
        except (KeyError, TypeError):
            raise ValueError("each message needs a role and a content") from None
        request = ChatRequest(
            messages=clean,
            max_tokens=limit,
            temperature=self._default_temperature if temperature is None else temperature,
            json_schema=schema,
            schema_name=output.__name__ if output is not None else "output",
        )
        chain = self._tiers[tier]
        key = cache_key(
            tenant=tenant,
            chain=[(s.name, s.provider.model) for s in chain],
            task=task,
            messages=request.messages,
            schema=schema,
            max_tokens=limit,
            temperature=request.temperature,
        )
        # The worst case a call may spend: prompt + completion, twice if a repair may follow.
        worst = (estimate_messages(request.messages) + limit) * (2 if output is not None else 1)
        return PoolCall(
            tenant, tier, task, request_id, request, output, list(chain), key, worst, call_id
        )
