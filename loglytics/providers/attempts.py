"""The one attempt path to a provider: retries, backoff, breaker verdicts, slot and timeout.

Why one path for `complete` and `stream`: both must retry the same errors,
spend the same budget and leave the breaker in the same state; a completion
is a stream of exactly one event (its `ChatResult`), so one loop serves both.

Why "within one timeout": a provider gets at most `timeout` seconds of
upstream time per call, retries and backoff included, so a hung server costs
a caller one timeout before the next provider of the tier is asked. Time
spent queueing for a slot, or waiting on our own consumer between stream
events, does not count: that is load, not failure.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass
from functools import partial

from loglytics.providers.base import ChatRequest, ChatResult, StreamDelta, StreamEvent
from loglytics.providers.breaker import CircuitState
from loglytics.providers.errors import ProviderError
from loglytics.providers.metrics import PoolMetrics
from loglytics.providers.results import RetryPolicy
from loglytics.providers.slots import ProviderSlot

log = logging.getLogger(__name__)

EventSource = Callable[[], AsyncIterator[StreamEvent]]
"""Opens one attempt's events; called only once a slot is held."""


async def _once(
    complete: Callable[[ChatRequest], Awaitable[ChatResult]], request: ChatRequest
) -> AsyncGenerator[StreamEvent, None]:
    """A completion as a one-event stream; the call starts only when the first event is asked."""
    yield await complete(request)


@dataclass(slots=True)
class _Budget:
    """Upstream seconds one provider may still spend on this call (attempts and pauses)."""

    limit: float
    spent: float = 0.0

    @property
    def left(self) -> float:
        return self.limit - self.spent


class Attempts:
    """Serves one request from one provider, retrying within the policy and the timeout."""

    def __init__(
        self,
        *,
        retry: RetryPolicy,
        timeout: float,
        metrics: PoolMetrics,
        rng: random.Random,
    ) -> None:
        self.retry = retry
        self.timeout = timeout
        self._metrics = metrics
        self._rng = rng

    def events(
        self, slot: ProviderSlot, request: ChatRequest, *, stream: bool
    ) -> AsyncGenerator[StreamEvent, None]:
        """The provider's deltas (streams only), then one `ChatResult`; or a `ProviderError`.

        The caller has passed `slot.breaker.allow()`. A stream is retried only
        before its first delta: text already handed on cannot be taken back.
        """
        source: EventSource
        if stream:
            source = partial(slot.provider.stream, request)
        else:
            source = partial(_once, slot.provider.complete, request)
        return self._retried(slot, source)

    async def _retried(
        self, slot: ProviderSlot, source: EventSource
    ) -> AsyncGenerator[StreamEvent, None]:
        """Attempts until one serves; every path ends in a breaker verdict or frees the trial."""
        budget = _Budget(self.timeout)
        last: ProviderError | None = None
        verdict = False
        try:
            for attempt in range(max(1, self.retry.attempts)):
                if attempt and not await self._backoff(slot, attempt - 1, budget):
                    break
                emitted = False
                async with slot.acquire():
                    if attempt == 0 and slot.breaker.state is CircuitState.OPEN:
                        # It opened while we queued: do not pile onto a failing server.
                        raise ProviderError.connect("circuit opened while waiting for a slot")
                    try:
                        async with aclosing(self._attempt(slot, source, budget)) as events:
                            async for event in events:
                                if isinstance(event, StreamDelta):
                                    emitted = True
                                    yield event
                                    continue
                                slot.breaker.record_success()
                                verdict = True
                                yield event
                                return
                    except ProviderError as exc:
                        last = exc
                    finally:
                        slot.update_circuit_metric()
                assert last is not None
                self._metrics.errors.labels(slot.name, last.kind).inc()
                if last.status is not None and not last.retryable:
                    break  # a 4xx says nothing about the server's health
                slot.breaker.record_failure()
                verdict = True
                slot.update_circuit_metric()
                if emitted or not last.retryable or budget.left <= 0:
                    break
        finally:
            if not verdict:
                slot.breaker.release_trial()
        assert last is not None
        raise last

    async def _backoff(self, slot: ProviderSlot, retry: int, budget: _Budget) -> bool:
        """Pause before retry number `retry` (0-based); False: give up on this provider instead.

        No retry once the pause would use up the budget, or once the circuit
        left "closed" (opened by this or another caller, or a half-open trial).
        """
        pause = self.retry.delay(retry, self._rng)
        if budget.spent + pause >= budget.limit or slot.breaker.state is not CircuitState.CLOSED:
            return False
        await asyncio.sleep(pause)
        budget.spent += pause
        return True

    async def _attempt(
        self, slot: ProviderSlot, source: EventSource, budget: _Budget
    ) -> AsyncGenerator[StreamEvent, None]:
        """One try, under a held slot: each event awaited within what is left of the budget.

        Every failure leaves as a `ProviderError`; a provider bug becomes a
        non-retryable "internal" one, so it cannot lose the request.
        """
        loop = asyncio.get_running_loop()
        events: AsyncIterator[StreamEvent] | None = None
        try:
            events = source()
            while True:
                began = loop.time()
                try:
                    async with asyncio.timeout(budget.left):
                        event = await anext(events)
                except StopAsyncIteration:
                    raise ProviderError.protocol("stream ended without a result") from None
                except TimeoutError:
                    raise ProviderError.timeout(f"timeout after {budget.limit:.1f}s") from None
                finally:
                    budget.spent += loop.time() - began
                yield event
                if isinstance(event, ChatResult):
                    return
        except ProviderError:
            raise
        except Exception as exc:
            log.exception("provider %s raised unexpectedly", slot.name)
            raise ProviderError(
                f"{type(exc).__name__}: {exc}", kind="internal", retryable=False
            ) from exc
        finally:
            closer = getattr(events, "aclose", None)
            if closer is not None:
                await closer()
