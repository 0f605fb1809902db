"""Quota holds and usage records: what every pool call is charged, however it ends.

Why its own object, given only the ledger, the usage callback and the
metrics: charging must not depend on how a reply was produced (provider,
cache, stream, repair), only on what the call consumed, which `PoolCall`
carries. A call reserves its worst case before anything else, and its
`Booking` settles or releases that hold and emits one `UsageRecord`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from loglytics.providers.calls import PoolCall
from loglytics.providers.errors import PoolError
from loglytics.providers.ledger import Ledger
from loglytics.providers.metrics import PoolMetrics
from loglytics.providers.quota import Reservation
from loglytics.providers.results import PoolResult
from loglytics.providers.tokens import usage_from
from loglytics.schemas import UsageRecord

log = logging.getLogger(__name__)

UsageCallback = Callable[[UsageRecord], Awaitable[None]]


class Accounting:
    """Reserves before a call, books after it; owns the records still being emitted."""

    def __init__(
        self,
        ledger: Ledger | None,
        on_usage: UsageCallback | None,
        metrics: PoolMetrics,
        *,
        lease_s: float,
    ) -> None:
        self.ledger = ledger
        self.lease_s = lease_s
        self._on_usage = on_usage
        self.metrics = metrics
        self._background: set[asyncio.Task[None]] = set()
        self.open_calls = 0
        self._no_open_calls = asyncio.Event()
        self._no_open_calls.set()

    async def reserve(self, call: PoolCall) -> Reservation | None:
        """Hold the call's worst case, or raise `QuotaExceeded` (counted) with nothing held.

        The hold's lease outlasts the longest the call may run; the call id
        makes the hold the same one when the call is made again after a crash.
        """
        if self.ledger is None:
            return None
        try:
            return await self.ledger.reserve(
                call.tenant,
                call.tier,
                call.reserve_tokens,
                call_id=call.call_id,
                lease_s=self.lease_s,
            )
        except PoolError as exc:
            self.metrics.calls.labels(call.tier, call.task, "", exc.error).inc()
            self.metrics.errors.labels("", exc.error).inc()
            raise

    def book(self, call: PoolCall, reservation: Reservation | None) -> Booking:
        """The context a call runs in; leaving it settles the reservation and reports usage."""
        return Booking(self, call, reservation)

    async def settle(self, reservation: Reservation | None, tokens: int | None) -> None:
        """Charge `tokens`, or release the hold uncharged when `tokens` is None.

        A settlement that cannot reach the ledger is logged, not raised: the
        hold's lease charges it at its reserved amount.
        """
        if reservation is None or self.ledger is None:
            return
        try:
            if tokens is None:
                await self.ledger.release(reservation)
            else:
                await self.ledger.settle(reservation, tokens)
        except Exception:  # the answer is owed to the caller; the lease settles the hold
            log.exception("settling call %s failed; its lease will", reservation.id)

    def account_later(
        self, record: UsageRecord | None, reservation: Reservation | None, tokens: int | None
    ) -> None:
        """Report, then settle, in the background (the call was cancelled and must not
        await anything)."""

        async def account() -> None:
            if record is not None:
                await self.emit(record)
            await self.settle(reservation, tokens)

        task = asyncio.ensure_future(account())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def emit(self, record: UsageRecord) -> None:
        """Hand the record to `on_usage`; a failing sink is logged, never raised."""
        if self._on_usage is None:
            return
        try:
            await self._on_usage(record)
        except Exception:  # accounting sinks must not fail the call they account for
            log.exception("on_usage callback failed for request %r", record.request_id)

    async def wait_calls(self, timeout: float) -> int:
        """Wait up to `timeout` seconds for the calls in flight to end; how many are left."""
        try:
            await asyncio.wait_for(self._no_open_calls.wait(), timeout)
        except TimeoutError:
            pass
        return self.open_calls

    def call_opened(self) -> None:
        """A booking began (see `wait_calls`)."""
        self.open_calls += 1
        self._no_open_calls.clear()

    def call_closed(self) -> None:
        """A booking ended, however the call went."""
        self.open_calls -= 1
        if not self.open_calls:
            self._no_open_calls.set()

    async def drain(self) -> None:
        """Wait for records still being emitted in the background."""
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)


def _outcome(exc: BaseException | None, hit: PoolResult | None) -> str:
    """The `outcome` label of a finished call."""
    if isinstance(exc, PoolError):
        return exc.error
    if exc is not None:
        cancelled = isinstance(exc, asyncio.CancelledError | GeneratorExit)
        return "cancelled" if cancelled else "internal"
    return "cached" if hit is not None else "ok"


class Booking:
    """Settles the reservation and emits the usage record however the call ends.

    Served (or cached) calls are charged and reported, failures that consumed
    tokens (e.g. `InvalidOutput`, a stream cut short) too; calls that reached
    no model release their hold uncharged. A cancelled call's record is
    emitted in the background.
    """

    def __init__(
        self, accounting: Accounting, call: PoolCall, reservation: Reservation | None
    ) -> None:
        self._accounting = accounting
        self.call = call
        self.reservation = reservation
        self.hit: PoolResult | None = None

    async def __aenter__(self) -> Booking:
        self._accounting.call_opened()
        return self

    def _charged_to(self) -> tuple[str, str]:
        """(provider, model) the call is charged to; ("", "") when it reached no model."""
        call, hit = self.call, self.hit
        if call.served is not None:
            return call.served.provider, call.served.model
        if hit is not None:
            return hit.provider, hit.model
        if call.partial:
            # A stream that stopped early (consumer left, or the server broke off):
            # what was generated was still generated, so charge an estimate.
            text = "".join(call.partial)
            call.usage = usage_from(None, None, messages=call.request.messages, text=text)
            return call.partial_from
        return "", ""

    def _record(self, provider: str, model: str) -> UsageRecord:
        call = self.call
        return UsageRecord(
            tenant=call.tenant,
            tier=call.tier,
            task=call.task,
            provider=provider,
            model=model,
            prompt_tokens=call.usage.prompt_tokens,
            completion_tokens=call.usage.completion_tokens,
            estimated=call.usage.estimated,
            cached=self.hit is not None,
            latency_ms=(time.perf_counter() - call.started) * 1000.0,
            ts=(self.reservation.since if self.reservation else 0.0) or time.time(),
            request_id=call.request_id,
        )

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        try:
            await self._account(exc)
        finally:
            self._accounting.call_closed()

    async def _account(self, exc: BaseException | None) -> None:
        call, accounting = self.call, self._accounting
        metrics = accounting.metrics
        if isinstance(exc, PoolError):
            metrics.errors.labels(call.served.provider if call.served else "", exc.error).inc()
        provider, model = self._charged_to()
        metrics.calls.labels(call.tier, call.task, provider, _outcome(exc, self.hit)).inc()
        charge = call.usage.total if provider else None
        cancelled = exc is not None and not isinstance(exc, Exception)
        paid_before = self.reservation is not None and self.reservation.already_settled
        # The usage record goes out before the settlement, so a call the ledger shows
        # settled has reported its usage: a run of it after a crash, told `already_settled`,
        # adds none. Every other run reports, at the time its call id was first held, so
        # two runs of one call (a request taken up by its partition's next owner while the
        # first still ran it) write one `llm_usage` key: one row, billed once.
        record = self._record(provider, model) if provider and not paid_before else None
        if cancelled:
            accounting.account_later(record, self.reservation, charge)
            return
        if record is not None:
            await accounting.emit(record)
        await accounting.settle(self.reservation, charge)
