"""The tier-aware LLM pool: every LLM call in the product goes through `LLMPool`.

A call is: quota check (reserve) → response cache → the tier's providers in
order, each behind its own parallel-slot semaphore, circuit breaker, timeout
and retry budget → schema validation and at most one repair → settle the
tokens actually used → one `UsageRecord` to `on_usage`.

Why "fallback within one timeout": a provider gets at most `timeout` seconds
of upstream time per call, retries and backoff included (see `attempts`), so
a hung server costs a caller one timeout, not retries times timeout, before
the next provider of the tier is asked.

The pool only composes its parts: `catalog` builds providers from settings,
`calls` checks arguments, `attempts` talks to one provider, `accounting`
charges, `health` probes; what it keeps is the order of a call and the
fallback along the tier chain.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from contextlib import aclosing
from dataclasses import replace
from functools import partial
from typing import Any

from prometheus_client import CollectorRegistry
from pydantic import BaseModel

from loglytics.providers.accounting import Accounting, UsageCallback
from loglytics.providers.attempts import Attempts
from loglytics.providers.base import ChatRequest, ChatResult, Provider, StreamDelta, StreamEvent
from loglytics.providers.breaker import CircuitBreaker, CircuitState
from loglytics.providers.cache import TTLCache
from loglytics.providers.calls import CallBuilder, PoolCall
from loglytics.providers.catalog import tiers_from_settings
from loglytics.providers.errors import InvalidOutput, NoProviderAvailable, ProviderError
from loglytics.providers.health import HealthMonitor
from loglytics.providers.ledger import Ledger, LocalLedger
from loglytics.providers.metrics import PoolMetrics
from loglytics.providers.quota import QuotaLedger
from loglytics.providers.results import PoolResult, PoolStreamEvent, RetryPolicy
from loglytics.providers.slots import ProviderSlot
from loglytics.providers.structured import parse_output, repair_messages
from loglytics.providers.tokens import add_usage
from loglytics.schemas import TokenUsage
from loglytics.settings import TIERS, Settings, Tier

log = logging.getLogger(__name__)

__all__ = ["LLMPool", "PoolResult", "PoolStreamEvent", "RetryPolicy", "UsageCallback"]


def _slot_chains(
    tiers: Mapping[Tier, Sequence[Provider]],
    metrics: PoolMetrics,
    make_breaker: Callable[[], CircuitBreaker],
) -> tuple[dict[str, ProviderSlot], dict[Tier, list[ProviderSlot]]]:
    """One slot per provider name (shared by the tiers that use it), and each tier's chain."""
    slots: dict[str, ProviderSlot] = {}
    chains: dict[Tier, list[ProviderSlot]] = {}
    for tier in TIERS:
        chain: list[ProviderSlot] = []
        for provider in tiers.get(tier, ()):
            slot = slots.get(provider.name)
            if slot is None:
                slot = slots[provider.name] = ProviderSlot(provider, make_breaker(), metrics)
            elif slot.provider is not provider:
                raise ValueError(f"two different providers are named {provider.name!r}")
            chain.append(slot)
        chains[tier] = chain
    return slots, chains


class LLMPool:
    """Tier-aware pool over providers; build it with `from_settings` in the product."""

    def __init__(
        self,
        tiers: Mapping[Tier, Sequence[Provider]],
        *,
        ledger: Ledger | None = None,
        on_usage: UsageCallback | None = None,
        timeout: float = 60.0,
        default_max_tokens: int = 384,
        default_temperature: float = 0.2,
        cache_size: int = 1024,
        cache_ttl: float = 3600.0,
        retry: RetryPolicy | None = None,
        breaker_threshold: int = 5,
        breaker_reset_seconds: float = 30.0,
        health_interval: float = 15.0,
        registry: CollectorRegistry | None = None,
        rng: random.Random | None = None,
        stop_grace: float = 5.0,
    ) -> None:
        self.metrics = PoolMetrics(registry)
        self.timeout = timeout
        self.stop_grace = stop_grace
        self.default_max_tokens = default_max_tokens
        self.default_temperature = default_temperature
        self.retry = retry or RetryPolicy()
        self.cache: TTLCache[PoolResult] = TTLCache(cache_size, cache_ttl)
        breaker = partial(
            CircuitBreaker, failure_threshold=breaker_threshold, reset_seconds=breaker_reset_seconds
        )
        self._slots, self._tiers = _slot_chains(tiers, self.metrics, breaker)
        self._calls = CallBuilder(
            self._tiers,
            default_max_tokens=default_max_tokens,
            default_temperature=default_temperature,
        )
        self._attempts = Attempts(
            retry=self.retry, timeout=timeout, metrics=self.metrics, rng=rng or random.Random()
        )
        self._accounting = Accounting(
            ledger, on_usage, self.metrics, lease_s=self._longest_call(timeout)
        )
        self._health = HealthMonitor(
            self._slots,
            self._tiers,
            metrics=self.metrics,
            timeout=timeout,
            interval=health_interval,
        )

    def _longest_call(self, timeout: float) -> float:
        """How long one call may run at most (every attempt on every provider of the
        longest chain, twice for a repair round), plus a margin: its hold's lease."""
        longest_chain = max((len(chain) for chain in self._tiers.values()), default=1)
        return timeout * self.retry.attempts * longest_chain * 2 + 30.0

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        ledger: Ledger | None = None,
        on_usage: UsageCallback | None = None,
        registry: CollectorRegistry | None = None,
        parallel: Mapping[str, int] | None = None,
        **options: Any,
    ) -> LLMPool:
        """The product's pool: pro → vLLM, Ollama, embedded; free → Ollama, embedded.

        Only providers with a base URL take part (see `catalog.PROVIDER_SPECS`);
        the embedded llama.cpp server's address is read from the running stack
        when LLAMACPP_BASE_URL is empty. Without a `ledger`, quotas are kept in
        memory (per process) from `settings.tier_limits`, never skipped.
        `parallel` overrides slots per provider name ("vllm", "ollama", "embedded").
        """
        if not settings.llamacpp_base_url:
            settings = settings.resolved()
        timeout = settings.llm_timeout_seconds
        tiers = tiers_from_settings(settings, timeout=timeout, parallel=parallel)
        options.setdefault("timeout", timeout)
        options.setdefault("default_max_tokens", settings.llm_max_tokens)
        options.setdefault("cache_size", settings.llm_cache_size)
        options.setdefault("cache_ttl", settings.llm_cache_ttl_seconds)
        return cls(
            tiers,
            ledger=ledger
            if ledger is not None
            else LocalLedger(QuotaLedger({}, settings.tier_limits)),
            on_usage=on_usage,
            registry=registry,
            **options,
        )

    # ------------------------------------------------------------------ introspection

    @property
    def registry(self) -> CollectorRegistry:
        return self.metrics.registry

    @property
    def ledger(self) -> Ledger | None:
        return self._accounting.ledger

    @property
    def health_interval(self) -> float:
        return self._health.interval

    @property
    def providers(self) -> dict[str, Provider]:
        return {name: slot.provider for name, slot in self._slots.items()}

    def tier_chain(self, tier: Tier) -> list[str]:
        """Provider names of a tier, in fallback order."""
        return [slot.name for slot in self._tiers.get(tier, [])]

    def circuit(self, provider: str) -> CircuitState:
        return self._slots[provider].breaker.state

    def health_snapshot(self) -> dict[str, Any]:
        """Last known state, without probing anything."""
        return self._health.snapshot()

    async def health(self) -> dict[str, Any]:
        """Probe every provider now, then report as `health_snapshot`."""
        await self._health.check()
        return self._health.snapshot()

    async def check_health(self) -> None:
        """Probe all providers concurrently; a failed probe opens that provider's circuit."""
        await self._health.check()

    async def models(self) -> dict[str, list[str]]:
        """Models each provider offers; a provider that cannot answer lists none."""
        return await self._health.models()

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start periodic health checks (idempotent)."""
        self._health.start()

    async def stop(self) -> None:
        """Stop health checks, let the calls in flight end (for up to `stop_grace`
        seconds), wait for pending usage callbacks, close provider clients.

        Why wait: a worker stops its runtime, and so this pool, before its agents, and
        a detection verdict still on its way would fail on a closed client and keep
        the rules' wording for good (its window is absorbed by then). A call still
        running after the grace fails as before: a clean stop must stay prompt.
        """
        await self._health.stop()
        left = await self._accounting.wait_calls(self.stop_grace)
        if left:
            log.warning(
                "%d LLM calls still running after %.1f s; closing anyway", left, self.stop_grace
            )
        await self._accounting.drain()
        for slot in self._slots.values():
            try:
                await slot.provider.aclose()
            except Exception:  # closing must not stop the others from closing
                log.exception("closing provider %s failed", slot.name)

    async def __aenter__(self) -> LLMPool:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------ the calls

    async def complete(
        self,
        *,
        tenant: str,
        tier: Tier,
        task: str,
        messages: list[dict[str, str]],
        output: type[BaseModel] | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        request_id: str = "",
        call_id: str = "",
    ) -> PoolResult:
        """Serve one call, or raise `QuotaExceeded`, `NoProviderAvailable` or `InvalidOutput`.

        The quota is checked before anything else, cache lookups included: a
        cache hit counts against calls per day but is charged no tokens.
        `output` makes the reply structured: its schema goes to the provider,
        the reply is validated into `PoolResult.data`, with one repair round.
        `ValueError` means the arguments themselves are wrong (empty messages,
        unknown tier, unbounded output model). `call_id` names the call for the
        ledger (request id and call number): made again after a crash, the call
        finds its own hold or settlement, so it is charged once; empty: a new id.
        """
        call = self._calls.build(
            tenant, tier, task, messages, output, max_tokens, temperature, request_id, call_id
        )
        reservation = await self._accounting.reserve(call)
        async with self._accounting.book(call, reservation) as book:
            hit = self._cache_hit(call)
            if hit is not None:
                book.hit = hit
                return hit
            first = await self._call_chain(call, call.request)
            result = await self._finish(call, first)
            self.cache.put(call.key, result)
            return result

    async def stream(
        self,
        *,
        tenant: str,
        tier: Tier,
        task: str,
        messages: list[dict[str, str]],
        output: type[BaseModel] | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        request_id: str = "",
        call_id: str = "",
    ) -> AsyncGenerator[PoolStreamEvent, None]:
        """Deltas as they arrive, then one `PoolResult`; errors as in `complete`.

        Fallback to the next provider happens only before the first delta:
        text already shown cannot be taken back. A break after that raises
        `NoProviderAvailable`. Close the iterator (`aclosing`) if you stop early.
        """
        call = self._calls.build(
            tenant, tier, task, messages, output, max_tokens, temperature, request_id, call_id
        )
        reservation = await self._accounting.reserve(call)
        async with self._accounting.book(call, reservation) as book:
            hit = self._cache_hit(call)
            if hit is not None:
                book.hit = hit
                yield StreamDelta(hit.text)
                yield hit
                return
            first: ChatResult | None = None
            async with aclosing(self._chain(call, call.request, stream=True)) as events:
                async for event in events:
                    if isinstance(event, StreamDelta):
                        yield event
                    else:
                        first = event
            assert first is not None  # the chain ends in a result or raises
            result = await self._finish(call, first)
            self.cache.put(call.key, result)
            yield result

    # ------------------------------------------------------------------ internals

    def _cache_hit(self, call: PoolCall) -> PoolResult | None:
        hit = self.cache.get(call.key) if self.cache.enabled else None
        if hit is None:
            return None
        self.metrics.cache_hits.labels(call.tier, call.task).inc()
        return replace(
            hit,
            usage=TokenUsage(),
            cached=True,
            latency_ms=(time.perf_counter() - call.started) * 1000.0,
        )

    def _record_served(self, call: PoolCall, result: ChatResult) -> None:
        call.served = result
        call.usage = add_usage(call.usage, result.usage)
        self.metrics.latency.labels(call.tier, result.provider).observe(result.latency_ms / 1000.0)
        self.metrics.tokens.labels(call.tier, result.provider, "in").inc(result.usage.prompt_tokens)
        self.metrics.tokens.labels(call.tier, result.provider, "out").inc(
            result.usage.completion_tokens
        )

    async def _finish(self, call: PoolCall, first: ChatResult) -> PoolResult:
        """Validate structured output; one repair round if it does not validate."""
        if call.output is None:
            return call.result(first, None, repaired=False)
        try:
            return call.result(first, parse_output(call.output, first.text), repaired=False)
        except ValueError as exc:
            problem = str(exc)
        if first.finish_reason == "length":
            problem = f"the reply was cut off at max_tokens ({problem})"
        assert call.request.json_schema is not None
        repair = replace(
            call.request,
            messages=repair_messages(
                call.request.messages, first.text, problem, call.request.json_schema
            ),
        )
        fixed = await self._call_chain(call, repair)
        try:
            data = parse_output(call.output, fixed.text)
        except ValueError as exc:
            self.metrics.repairs.labels(fixed.provider, "failed").inc()
            raise InvalidOutput(
                f"{call.output.__name__} reply from {fixed.provider} invalid after repair: {exc}",
                text=fixed.text,
            ) from None
        self.metrics.repairs.labels(fixed.provider, "ok").inc()
        return call.result(fixed, data, repaired=True)

    async def _call_chain(self, call: PoolCall, request: ChatRequest) -> ChatResult:
        """The tier's providers in order, not streamed; the first that answers serves."""
        async with aclosing(self._chain(call, request, stream=False)) as events:
            async for event in events:
                if isinstance(event, ChatResult):
                    return event
        raise AssertionError("the provider chain ended without a result")  # _chain raises first

    async def _chain(
        self, call: PoolCall, request: ChatRequest, *, stream: bool
    ) -> AsyncGenerator[StreamEvent, None]:
        """The tier's providers in order: deltas of the one serving, then its `ChatResult`.

        A provider that fails moves the call to the next one, but only before
        its first delta; a break after that raises `NoProviderAvailable`.
        """
        errors: list[str] = []
        for slot in call.chain:
            if not slot.breaker.allow():
                errors.append(f"{slot.name}: circuit open")
                continue
            served: ChatResult | None = None
            emitted = False
            try:
                async with aclosing(self._attempts.events(slot, request, stream=stream)) as events:
                    async for event in events:
                        if isinstance(event, ChatResult):
                            served = event
                            continue
                        emitted = True
                        call.partial.append(event.text)
                        call.partial_from = (slot.name, slot.provider.model)
                        yield event
            except ProviderError as exc:
                if emitted:
                    raise NoProviderAvailable(
                        f"stream from {slot.name} broke after output began: {exc}"
                    ) from exc
                errors.append(f"{slot.name}: {exc}")
                continue
            assert served is not None  # a provider's events end in a result or raise
            self._record_served(call, served)
            yield served
            return
        if not call.chain:
            raise NoProviderAvailable(f"no LLM provider is configured for tier {call.tier!r}")
        raise NoProviderAvailable(
            f"no provider of tier {call.tier!r} could serve: " + "; ".join(errors)
        )
