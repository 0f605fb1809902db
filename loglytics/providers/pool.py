"""The tier-aware LLM pool: every LLM call in the product goes through `LLMPool`.

A call is: quota check (reserve) → response cache → the tier's providers in
order, each behind its own parallel-slot semaphore, circuit breaker, timeout
and retry budget → schema validation and at most one repair → settle the
tokens actually used → one `UsageRecord` to `on_usage`.

Why "fallback within one timeout": a provider gets at most
`timeout` seconds of upstream time per call, retries and backoff included.
A hung server therefore costs a caller one timeout, not retries times timeout,
before the next provider of the tier is asked. Time spent queueing for a
slot does not count: queueing is load, not failure, and every slot holder is
itself bounded by the timeout.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry
from pydantic import BaseModel

from loglytics.providers.base import ChatRequest, ChatResult, HealthInfo, Provider, StreamDelta
from loglytics.providers.breaker import CircuitBreaker, CircuitState
from loglytics.providers.cache import TTLCache, cache_key
from loglytics.providers.errors import (
    InvalidOutput,
    NoProviderAvailable,
    PoolError,
    ProviderError,
)
from loglytics.providers.metrics import PoolMetrics
from loglytics.providers.ollama import OllamaProvider
from loglytics.providers.openai import OpenAIProvider
from loglytics.providers.quota import QuotaLedger, Reservation
from loglytics.providers.slots import ProviderSlot
from loglytics.providers.structured import json_schema_for, parse_output, repair_messages
from loglytics.providers.tokens import add_usage, estimate_messages, usage_from
from loglytics.schemas import TokenUsage, UsageRecord
from loglytics.settings import TIERS, Settings, Tier

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)
UsageCallback = Callable[[UsageRecord], Awaitable[None]]

DEFAULT_PARALLEL: dict[str, int] = {"vllm": 64, "ollama": 4, "embedded": 4}
"""Parallel slots per provider: vLLM batches widely, Ollama's OLLAMA_NUM_PARALLEL
defaults to 4 where memory allows, the embedded llama.cpp server runs 4 slots."""


@dataclass(frozen=True, slots=True)
class PoolResult:
    """A served call. `usage` is what the tenant was charged (zero for cache hits).

    `text` is the final reply; after a repair (`repaired=True`) it is the
    repaired reply, which in a stream differs from the concatenated deltas.
    """

    text: str
    data: BaseModel | None
    usage: TokenUsage
    provider: str
    model: str
    latency_ms: float
    cached: bool = False
    repaired: bool = False
    finish_reason: str = "stop"

    @property
    def truncated(self) -> bool:
        return self.finish_reason == "length"

    def data_as(self, model: type[M]) -> M:
        """`data`, typed: raises TypeError if the call had another (or no) output model."""
        if not isinstance(self.data, model):
            raise TypeError(f"result data is {type(self.data).__name__}, not {model.__name__}")
        return self.data


PoolStreamEvent = StreamDelta | PoolResult
"""What `LLMPool.stream` yields: text deltas, then exactly one `PoolResult`."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Attempts per provider (within its timeout) and exponential backoff with jitter."""

    attempts: int = 3
    base_delay: float = 0.1
    max_delay: float = 2.0

    def delay(self, retry: int, rng: random.Random) -> float:
        """Delay before retry number `retry` (0-based): half fixed, half random ("equal jitter")."""
        cap = min(self.max_delay, self.base_delay * 2.0**retry)
        return cap / 2 + rng.uniform(0, cap / 2)


@dataclass(slots=True)
class _Call:
    tenant: str
    tier: Tier
    task: str
    request_id: str
    request: ChatRequest
    output: type[BaseModel] | None
    chain: list[ProviderSlot]
    key: str
    reserve_tokens: int
    started: float = field(default_factory=time.perf_counter)
    usage: TokenUsage = field(default_factory=TokenUsage)
    served: ChatResult | None = None
    # Text streamed from `partial_from` before a stream ended without its final result.
    partial: list[str] = field(default_factory=list)
    partial_from: tuple[str, str] = ("", "")


class LLMPool:
    """Tier-aware pool over providers; build it with `from_settings` in the product."""

    def __init__(
        self,
        tiers: Mapping[Tier, Sequence[Provider]],
        *,
        ledger: QuotaLedger | None = None,
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
    ) -> None:
        self.metrics = PoolMetrics(registry)
        self.ledger = ledger
        self.timeout = timeout
        self.default_max_tokens = default_max_tokens
        self.default_temperature = default_temperature
        self.retry = retry or RetryPolicy()
        self.health_interval = health_interval
        self.cache: TTLCache[PoolResult] = TTLCache(cache_size, cache_ttl)
        self._on_usage = on_usage
        self._rng = rng or random.Random()
        self._slots: dict[str, ProviderSlot] = {}
        self._tiers: dict[Tier, list[ProviderSlot]] = {}
        for tier in TIERS:
            chain: list[ProviderSlot] = []
            for provider in tiers.get(tier, ()):
                slot = self._slots.get(provider.name)
                if slot is None:
                    breaker = CircuitBreaker(
                        failure_threshold=breaker_threshold, reset_seconds=breaker_reset_seconds
                    )
                    slot = self._slots[provider.name] = ProviderSlot(
                        provider, breaker, self.metrics
                    )
                elif slot.provider is not provider:
                    raise ValueError(f"two different providers are named {provider.name!r}")
                chain.append(slot)
            self._tiers[tier] = chain
        self._schemas: dict[type[BaseModel], dict[str, Any]] = {}
        self._health_task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        ledger: QuotaLedger | None = None,
        on_usage: UsageCallback | None = None,
        registry: CollectorRegistry | None = None,
        parallel: Mapping[str, int] | None = None,
        **options: Any,
    ) -> LLMPool:
        """The product's pool: pro → vLLM, Ollama, embedded; free → Ollama, embedded.

        Only providers with a base URL take part; the embedded llama.cpp server's
        address is read from the running stack when LLAMACPP_BASE_URL is empty.
        Without a `ledger`, quotas are kept in memory (per process) from
        `settings.tier_limits`, never skipped. `parallel` overrides slots per
        provider name ("vllm", "ollama", "embedded").
        """
        if not settings.llamacpp_base_url:
            settings = settings.resolved()
        slots = {**DEFAULT_PARALLEL, **(parallel or {})}
        timeout = settings.llm_timeout_seconds
        vllm: list[Provider] = []
        ollama: list[Provider] = []
        embedded: list[Provider] = []
        if settings.vllm_base_url:
            vllm.append(
                OpenAIProvider(
                    name="vllm",
                    base_url=settings.vllm_base_url,
                    model=settings.vllm_model,
                    api_key=settings.vllm_api_key,
                    max_parallel=slots["vllm"],
                    timeout=timeout,
                )
            )
        if settings.ollama_base_url:
            ollama.append(
                OllamaProvider(
                    name="ollama",
                    base_url=settings.ollama_base_url,
                    model=settings.ollama_model,
                    max_parallel=slots["ollama"],
                    timeout=timeout,
                )
            )
        if settings.llamacpp_base_url:
            embedded.append(
                OpenAIProvider(
                    name="embedded",
                    base_url=settings.llamacpp_base_url,
                    model=settings.llamacpp_model,
                    max_parallel=slots["embedded"],
                    timeout=timeout,
                )
            )
        if not (vllm or ollama or embedded):
            log.warning("no LLM provider configured and no embedded stack running")
        options.setdefault("timeout", timeout)
        options.setdefault("default_max_tokens", settings.llm_max_tokens)
        options.setdefault("cache_size", settings.llm_cache_size)
        options.setdefault("cache_ttl", settings.llm_cache_ttl_seconds)
        return cls(
            {"pro": [*vllm, *ollama, *embedded], "free": [*ollama, *embedded]},
            ledger=ledger if ledger is not None else QuotaLedger({}, settings.tier_limits),
            on_usage=on_usage,
            registry=registry,
            **options,
        )

    # ------------------------------------------------------------------ introspection

    @property
    def registry(self) -> CollectorRegistry:
        return self.metrics.registry

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
        providers: dict[str, Any] = {}
        for name, slot in self._slots.items():
            info = slot.health
            state = slot.breaker.state
            slot.update_circuit_metric()
            providers[name] = {
                "ok": (info.ok if info else True) and state is not CircuitState.OPEN,
                "checked": info is not None,
                "detail": info.detail if info else "not checked yet",
                "model": slot.provider.model,
                "circuit": state.value,
                "in_flight": slot.active,
                "waiting": slot.waiting,
                "max_parallel": slot.provider.max_parallel,
            }
        tiers = {
            tier: {
                "providers": self.tier_chain(tier),
                "ok": any(providers[s.name]["ok"] for s in chain),
            }
            for tier, chain in self._tiers.items()
        }
        return {"ok": all(t["ok"] for t in tiers.values()), "providers": providers, "tiers": tiers}

    async def health(self) -> dict[str, Any]:
        """Probe every provider now, then report as `health_snapshot`."""
        await self.check_health()
        return self.health_snapshot()

    async def models(self) -> dict[str, list[str]]:
        """Models each provider offers; a provider that cannot answer lists none."""

        async def one(slot: ProviderSlot) -> list[str]:
            try:
                async with asyncio.timeout(min(self.timeout, 10.0)):
                    return await slot.provider.models()
            except (ProviderError, TimeoutError) as exc:
                log.info("models of %s unavailable: %s", slot.name, exc)
                return []

        names = list(self._slots)
        found = await asyncio.gather(*(one(self._slots[n]) for n in names))
        return dict(zip(names, found, strict=True))

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start periodic health checks (idempotent)."""
        if self._health_task is None or self._health_task.done():
            self._health_task = asyncio.create_task(self._health_loop(), name="llm-pool-health")

    async def stop(self) -> None:
        """Stop health checks, wait for pending usage callbacks, close provider clients."""
        if self._health_task is not None:
            self._health_task.cancel()
            await asyncio.gather(self._health_task, return_exceptions=True)
            self._health_task = None
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
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

    async def _health_loop(self) -> None:
        while True:
            await self.check_health()
            await asyncio.sleep(self.health_interval)

    async def check_health(self) -> None:
        """Probe all providers concurrently; a failed probe opens that provider's circuit."""

        async def probe(slot: ProviderSlot) -> None:
            try:
                async with asyncio.timeout(min(self.timeout, 5.0)):
                    info = await slot.provider.health()
            except TimeoutError:
                info = HealthInfo(ok=False, detail="health check timed out")
            except Exception as exc:  # a probe must never kill the loop
                info = HealthInfo(ok=False, detail=f"{type(exc).__name__}: {exc}")
            slot.health = info
            self.metrics.healthy.labels(slot.name).set(1 if info.ok else 0)
            if not info.ok and slot.breaker.state is not CircuitState.OPEN:
                log.warning("provider %s unhealthy: %s", slot.name, info.detail)
                slot.breaker.trip()
            slot.update_circuit_metric()

        await asyncio.gather(*(probe(s) for s in self._slots.values()))

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
    ) -> PoolResult:
        """Serve one call, or raise `QuotaExceeded`, `NoProviderAvailable` or `InvalidOutput`.

        The quota is checked before anything else, cache lookups included: a
        cache hit counts against calls per day but is charged no tokens.
        `output` makes the reply structured: its schema goes to the provider,
        the reply is validated into `PoolResult.data`, with one repair round.
        `ValueError` means the arguments themselves are wrong (empty messages,
        unknown tier, unbounded output model).
        """
        call = self._prepare(
            tenant, tier, task, messages, output, max_tokens, temperature, request_id
        )
        reservation = self._reserve(call)
        async with self._accounting(call, reservation) as book:
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
    ) -> AsyncGenerator[PoolStreamEvent, None]:
        """Deltas as they arrive, then one `PoolResult`; errors as in `complete`.

        Fallback to the next provider happens only before the first delta:
        text already shown cannot be taken back. A break after that raises
        `NoProviderAvailable`. Close the iterator (`aclosing`) if you stop early.
        """
        call = self._prepare(
            tenant, tier, task, messages, output, max_tokens, temperature, request_id
        )
        reservation = self._reserve(call)
        async with self._accounting(call, reservation) as book:
            hit = self._cache_hit(call)
            if hit is not None:
                book.hit = hit
                yield StreamDelta(hit.text)
                yield hit
                return
            errors: list[str] = []
            first: ChatResult | None = None
            for slot in call.chain:
                if not slot.breaker.allow():
                    errors.append(f"{slot.name}: circuit open")
                    continue
                emitted = False
                try:
                    async with aclosing(self._stream_slot(slot, call.request)) as events:
                        async for event in events:
                            if isinstance(event, StreamDelta):
                                emitted = True
                                call.partial.append(event.text)
                                call.partial_from = (slot.name, slot.provider.model)
                                yield event
                            else:
                                first = event
                except ProviderError as exc:
                    if emitted:
                        raise NoProviderAvailable(
                            f"stream from {slot.name} broke after output began: {exc}"
                        ) from exc
                    errors.append(f"{slot.name}: {exc}")
                    continue
                break
            if first is None:
                raise NoProviderAvailable(self._no_provider_message(call, errors))
            self._record_served(call, first)
            result = await self._finish(call, first)
            self.cache.put(call.key, result)
            yield result

    # ------------------------------------------------------------------ internals

    def _prepare(
        self,
        tenant: str,
        tier: Tier,
        task: str,
        messages: list[dict[str, str]],
        output: type[BaseModel] | None,
        max_tokens: int | None,
        temperature: float | None,
        request_id: str,
    ) -> _Call:
        if tier not in self._tiers:
            raise ValueError(f"unknown tier {tier!r}")
        if not messages:
            raise ValueError("messages must not be empty")
        limit = max_tokens if max_tokens is not None else self.default_max_tokens
        if limit <= 0:
            raise ValueError("max_tokens must be positive")
        schema = None
        if output is not None:
            schema = self._schemas.get(output)
            if schema is None:
                schema = self._schemas[output] = json_schema_for(output)
        try:
            clean = [{"role": str(m["role"]), "content": str(m["content"])} for m in messages]
        except (KeyError, TypeError):
            raise ValueError("each message needs a role and a content") from None
        request = ChatRequest(
            messages=clean,
            max_tokens=limit,
            temperature=self.default_temperature if temperature is None else temperature,
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
        return _Call(tenant, tier, task, request_id, request, output, list(chain), key, worst)

    def _reserve(self, call: _Call) -> Reservation | None:
        if self.ledger is None:
            return None
        try:
            return self.ledger.reserve(call.tenant, call.tier, call.reserve_tokens)
        except PoolError as exc:
            self.metrics.calls.labels(call.tier, call.task, "", exc.error).inc()
            self.metrics.errors.labels("", exc.error).inc()
            raise

    def _cache_hit(self, call: _Call) -> PoolResult | None:
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

    def _accounting(self, call: _Call, reservation: Reservation | None) -> _Accounting:
        return _Accounting(self, call, reservation)

    def _record_served(self, call: _Call, result: ChatResult) -> None:
        call.served = result
        call.usage = add_usage(call.usage, result.usage)
        self.metrics.latency.labels(call.tier, result.provider).observe(result.latency_ms / 1000.0)
        self.metrics.tokens.labels(call.tier, result.provider, "in").inc(result.usage.prompt_tokens)
        self.metrics.tokens.labels(call.tier, result.provider, "out").inc(
            result.usage.completion_tokens
        )

    def _result(
        self, call: _Call, served: ChatResult, data: BaseModel | None, repaired: bool
    ) -> PoolResult:
        return PoolResult(
            text=served.text,
            data=data,
            usage=call.usage,
            provider=served.provider,
            model=served.model,
            latency_ms=(time.perf_counter() - call.started) * 1000.0,
            repaired=repaired,
            finish_reason=served.finish_reason,
        )

    async def _finish(self, call: _Call, first: ChatResult) -> PoolResult:
        """Validate structured output; one repair round if it does not validate."""
        if call.output is None:
            return self._result(call, first, None, repaired=False)
        try:
            return self._result(call, first, parse_output(call.output, first.text), repaired=False)
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
        return self._result(call, fixed, data, repaired=True)

    def _no_provider_message(self, call: _Call, errors: list[str]) -> str:
        if not call.chain:
            return f"no LLM provider is configured for tier {call.tier!r}"
        return f"no provider of tier {call.tier!r} could serve: " + "; ".join(errors)

    async def _call_chain(self, call: _Call, request: ChatRequest) -> ChatResult:
        """The tier's providers in order; the first that answers serves."""
        errors: list[str] = []
        for slot in call.chain:
            if not slot.breaker.allow():
                errors.append(f"{slot.name}: circuit open")
                continue
            try:
                result = await self._call_slot(slot, request)
            except ProviderError as exc:
                errors.append(f"{slot.name}: {exc}")
                continue
            self._record_served(call, result)
            return result
        raise NoProviderAvailable(self._no_provider_message(call, errors))

    async def _call_slot(self, slot: ProviderSlot, request: ChatRequest) -> ChatResult:
        """One provider, retried on retryable errors within one timeout of upstream time.

        The caller has passed `breaker.allow()`; every path here ends in a
        breaker verdict (success/failure) or releases a half-open trial.
        """
        loop = asyncio.get_running_loop()
        spent = 0.0
        last: ProviderError | None = None
        verdict = False
        try:
            for attempt in range(max(1, self.retry.attempts)):
                if attempt:
                    pause = self.retry.delay(attempt - 1, self._rng)
                    if (
                        spent + pause >= self.timeout
                        or slot.breaker.state is not CircuitState.CLOSED
                    ):
                        break
                    await asyncio.sleep(pause)
                    spent += pause
                async with slot.acquire():
                    if attempt == 0 and slot.breaker.state is CircuitState.OPEN:
                        # It opened while we queued: do not pile onto a failing server.
                        raise ProviderError.connect("circuit opened while waiting for a slot")
                    began = loop.time()
                    try:
                        async with asyncio.timeout(self.timeout - spent):
                            result = await slot.provider.complete(request)
                    except TimeoutError:
                        last = ProviderError.timeout(f"timeout after {self.timeout:.1f}s")
                    except ProviderError as exc:
                        last = exc
                    except Exception as exc:  # a provider bug must not lose the request
                        log.exception("provider %s raised unexpectedly", slot.name)
                        last = ProviderError(
                            f"{type(exc).__name__}: {exc}", kind="internal", retryable=False
                        )
                    else:
                        slot.breaker.record_success()
                        verdict = True
                        return result
                    finally:
                        spent += loop.time() - began
                        slot.update_circuit_metric()
                self.metrics.errors.labels(slot.name, last.kind).inc()
                if last.status is not None and not last.retryable:
                    break  # a 4xx says nothing about the server's health
                slot.breaker.record_failure()
                verdict = True
                slot.update_circuit_metric()
                if not last.retryable or spent >= self.timeout:
                    break
        finally:
            if not verdict:
                slot.breaker.release_trial()
        assert last is not None
        raise last

    async def _stream_slot(
        self, slot: ProviderSlot, request: ChatRequest
    ) -> AsyncGenerator[StreamDelta | ChatResult, None]:
        """One provider's stream, retried like `_call_slot` but only before the first delta.

        The timeout bounds time spent waiting on the provider, not on our consumer.
        """
        loop = asyncio.get_running_loop()
        spent = 0.0
        last: ProviderError | None = None
        verdict = False
        try:
            for attempt in range(max(1, self.retry.attempts)):
                if attempt:
                    pause = self.retry.delay(attempt - 1, self._rng)
                    if (
                        spent + pause >= self.timeout
                        or slot.breaker.state is not CircuitState.CLOSED
                    ):
                        break
                    await asyncio.sleep(pause)
                    spent += pause
                emitted = False
                async with slot.acquire():
                    if attempt == 0 and slot.breaker.state is CircuitState.OPEN:
                        raise ProviderError.connect("circuit opened while waiting for a slot")
                    events = slot.provider.stream(request).__aiter__()
                    try:
                        while True:
                            began = loop.time()
                            try:
                                async with asyncio.timeout(self.timeout - spent):
                                    event = await anext(events)
                            except StopAsyncIteration:
                                raise ProviderError.protocol(
                                    "stream ended without a result"
                                ) from None
                            except TimeoutError:
                                raise ProviderError.timeout(
                                    f"timeout after {self.timeout:.1f}s"
                                ) from None
                            finally:
                                spent += loop.time() - began
                            if isinstance(event, StreamDelta):
                                emitted = True
                                yield event
                            else:
                                slot.breaker.record_success()
                                verdict = True
                                yield event
                                return
                    except ProviderError as exc:
                        last = exc
                    except Exception as exc:  # a provider bug must not lose the request
                        log.exception("provider %s stream raised unexpectedly", slot.name)
                        last = ProviderError(
                            f"{type(exc).__name__}: {exc}", kind="internal", retryable=False
                        )
                    finally:
                        closer = getattr(events, "aclose", None)
                        if closer is not None:
                            await closer()
                        slot.update_circuit_metric()
                assert last is not None
                self.metrics.errors.labels(slot.name, last.kind).inc()
                if last.status is not None and not last.retryable:
                    break  # a 4xx says nothing about the server's health
                slot.breaker.record_failure()
                verdict = True
                slot.update_circuit_metric()
                if emitted or not last.retryable or spent >= self.timeout:
                    break
        finally:
            if not verdict:
                slot.breaker.release_trial()
        assert last is not None
        raise last

    async def _emit_usage(self, record: UsageRecord) -> None:
        if self._on_usage is None:
            return
        try:
            await self._on_usage(record)
        except Exception:  # accounting sinks must not fail the call they account for
            log.exception("on_usage callback failed for request %r", record.request_id)


class _Accounting:
    """Settles the reservation and emits the usage record however the call ends.

    Served (or cached) calls are charged and reported, failures that consumed
    tokens (e.g. `InvalidOutput`, a stream cut short) too; calls that reached
    no model release their hold uncharged. A cancelled call's record is
    emitted in the background.
    """

    def __init__(self, pool: LLMPool, call: _Call, reservation: Reservation | None) -> None:
        self.pool = pool
        self.call = call
        self.reservation = reservation
        self.hit: PoolResult | None = None

    async def __aenter__(self) -> _Accounting:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        pool, call = self.pool, self.call
        served, hit = call.served, self.hit
        if isinstance(exc, PoolError):
            outcome = exc.error
            pool.metrics.errors.labels(served.provider if served else "", exc.error).inc()
        elif exc is not None:
            outcome = (
                "cancelled"
                if isinstance(exc, asyncio.CancelledError | GeneratorExit)
                else "internal"
            )
        else:
            outcome = "cached" if hit is not None else "ok"
        if served is not None:
            provider, model = served.provider, served.model
        elif hit is not None:
            provider, model = hit.provider, hit.model
        elif call.partial:
            # A stream that stopped early (consumer left, or the server broke off):
            # what was generated was still generated, so charge an estimate.
            provider, model = call.partial_from
            text = "".join(call.partial)
            call.usage = usage_from(None, None, messages=call.request.messages, text=text)
        else:
            provider = model = ""
        pool.metrics.calls.labels(call.tier, call.task, provider, outcome).inc()
        if self.reservation is not None and pool.ledger is not None:
            if not provider:
                pool.ledger.release(self.reservation)
            else:
                pool.ledger.settle(self.reservation, call.usage.total)
        if not provider:
            return
        record = UsageRecord(
            tenant=call.tenant,
            tier=call.tier,
            task=call.task,
            provider=provider,
            model=model,
            prompt_tokens=call.usage.prompt_tokens,
            completion_tokens=call.usage.completion_tokens,
            estimated=call.usage.estimated,
            cached=hit is not None,
            latency_ms=(time.perf_counter() - call.started) * 1000.0,
            ts=time.time(),
            request_id=call.request_id,
        )
        if exc is not None and not isinstance(exc, Exception):
            task = asyncio.ensure_future(pool._emit_usage(record))
            pool._background.add(task)
            task.add_done_callback(pool._background.discard)
            return
        await pool._emit_usage(record)
