"""The ledger the pool and the request stage talk to: operations in, decisions out.

Why one interface over operations: the decision is always the book's
(`QuotaLedger`) applied to one `LedgerOp` by `apply`. `LocalLedger` applies it
in process (tests, single-process tools); the worker's `RemoteLedger` (in
`loglytics.ledger`) sends the same op to the worker that owns the tenant's
partition, which applies it there. Callers cannot tell them apart, so the
tests of one hold for the other.
"""

from __future__ import annotations

import time
import uuid
from abc import ABC, abstractmethod

from loglytics.providers.errors import QuotaExceeded, RateLimited
from loglytics.providers.quota import DEFAULT_LEASE_S, QuotaLedger, Reservation
from loglytics.schemas import LedgerOp, LedgerReply, LedgerStatus
from loglytics.settings import Tier


def apply(book: QuotaLedger, op: LedgerOp) -> LedgerReply:
    """The owner's decision on one operation, as the reply the asker gets."""
    try:
        if op.kind == "reserve":
            held = book.reserve(
                op.tenant, op.tier, op.tokens, call_id=op.call_id, lease_s=op.lease_s
            )
            return LedgerReply(
                op_id=op.op_id,
                ok=True,
                already_settled=held.already_settled,
                held=held.tokens,
                held_since=held.since,
            )
        reservation = Reservation(op.call_id, op.tenant, op.tier, op.tokens)
        if op.kind == "settle":
            book.settle(reservation, op.tokens, count_call=op.count_call)
        elif op.kind == "release":
            book.release(reservation)
        elif op.kind == "admit":
            book.admit_request(op.tenant, op.call_id)
        return LedgerReply(op_id=op.op_id, ok=True, status=book.status(op.tenant, op.tier))
    except (QuotaExceeded, RateLimited) as exc:
        return LedgerReply(
            op_id=op.op_id,
            ok=False,
            error="rate_limited" if isinstance(exc, RateLimited) else "quota_exceeded",
            message=str(exc),
            retry_after=exc.retry_after,
            limit=exc.limit,
        )


def raise_refusal(reply: LedgerReply) -> None:
    """Turn a refusal back into the error the book raised."""
    if reply.ok:
        return
    error = RateLimited if reply.error == "rate_limited" else QuotaExceeded
    raise error(reply.message, retry_after=reply.retry_after or 0.0, limit=reply.limit or 0)


class Ledger(ABC):
    """Async admission and accounting; implementations only say how an op is answered."""

    @abstractmethod
    async def ask(self, op: LedgerOp) -> LedgerReply:
        """The owner's reply to `op` (sent again, unchanged, if a reply is lost)."""

    async def start(self) -> None:  # noqa: B027 - nothing to open in process
        """Open whatever the ledger talks over (nothing, in process)."""

    async def stop(self) -> None:  # noqa: B027 - nothing to close in process
        """Close it."""

    def _op(self, kind: str, tenant: str, tier: Tier, **fields: object) -> LedgerOp:
        return LedgerOp.model_validate(
            {
                "kind": kind,
                "op_id": uuid.uuid4().hex,
                "tenant": tenant,
                "tier": tier,
                "sent_at": time.time(),
                **fields,
            }
        )

    async def reserve(
        self,
        tenant: str,
        tier: Tier,
        tokens: int,
        *,
        call_id: str = "",
        lease_s: float = DEFAULT_LEASE_S,
    ) -> Reservation:
        """Hold `tokens` for one call, or raise `QuotaExceeded` with nothing held."""
        call = call_id or f"call-{uuid.uuid4().hex}"
        op = self._op("reserve", tenant, tier, call_id=call, tokens=max(0, tokens), lease_s=lease_s)
        reply = await self.ask(op)
        raise_refusal(reply)
        return Reservation(
            call,
            tenant,
            tier,
            reply.held,
            already_settled=reply.already_settled,
            since=reply.held_since,
        )

    async def settle(
        self, reservation: Reservation, actual_tokens: int, *, count_call: bool = True
    ) -> None:
        """Charge what the call used; a replayed settlement charges nothing more."""
        if reservation.already_settled:
            return
        tokens = max(0, actual_tokens)
        await self.ask(
            self._op(
                "settle",
                reservation.tenant,
                reservation.tier,
                call_id=reservation.id,
                tokens=tokens,
                count_call=count_call,
            )
        )

    async def release(self, reservation: Reservation) -> None:
        """Drop the hold uncharged (the call reached no model)."""
        if reservation.already_settled:
            return
        op = self._op("release", reservation.tenant, reservation.tier, call_id=reservation.id)
        await self.ask(op)

    async def admit_request(self, tenant: str, request_id: str, tier: Tier = "free") -> None:
        """Count a request in the tenant's rate window, or raise `RateLimited`."""
        raise_refusal(await self.ask(self._op("admit", tenant, tier, call_id=request_id)))

    async def status(self, tenant: str, tier: Tier) -> LedgerStatus:
        """The tenant's counters, holds, limits and resets, as the owner sees them."""
        reply = await self.ask(self._op("status", tenant, tier))
        assert reply.status is not None  # every accepted non-reserve op reports it
        return reply.status


class LocalLedger(Ledger):
    """The book applied in this process: for tests and single-process tools."""

    def __init__(self, book: QuotaLedger) -> None:
        self.book = book

    async def ask(self, op: LedgerOp) -> LedgerReply:
        return apply(self.book, op)
