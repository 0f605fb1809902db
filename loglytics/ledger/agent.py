"""The ledger agent: owns the budgets of the tenants whose `quota.ops` partitions it holds.

Why an agent over a partitioned table rather than a table every worker writes:
two workers writing one tenant's record each overwrite the other's charges and
each admits calls against its own view. Here one consumer group member owns
each partition of `quota.ops` (keyed by tenant) and, co-partitioned with it,
the same partition of the `quota-book` table (changelog-backed), and applies
that partition's operations one at a time. Every admission decision for a
tenant is therefore made in one place, in order, whichever worker or gateway
asked; when a worker dies, the partition's next owner restores the table from
its changelog (holds included) and carries on.

An op processed twice (its offset not yet committed when the owner died) is
harmless: reserve, settle, release and admit are idempotent per call or request id.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, MutableMapping
from typing import Any

import faust
from faust.types import StreamT

from loglytics.deadletters import DeadLetterFn, decoded
from loglytics.providers.ledger import apply
from loglytics.providers.quota import QuotaLedger, RateWindow
from loglytics.schemas import LedgerOp
from loglytics.settings import Settings

log = logging.getLogger(__name__)

BOOK_TABLE = "quota-book"


class BookView(MutableMapping[str, dict[str, Any]]):
    """The book's str-keyed view of the table (bytes keys, JSON dict values)."""

    def __init__(self, table: MutableMapping[bytes, Any]) -> None:
        self.table = table

    def __getitem__(self, tenant: str) -> dict[str, Any]:
        value = self.table.get(tenant.encode())
        if value is None:
            raise KeyError(tenant)
        return dict(value)

    def __setitem__(self, tenant: str, value: dict[str, Any]) -> None:
        self.table[tenant.encode()] = value

    def __delitem__(self, tenant: str) -> None:
        del self.table[tenant.encode()]

    def __iter__(self) -> Iterator[str]:
        return (k.decode() for k in self.table if isinstance(k, bytes))

    def __len__(self) -> int:
        return len(self.table)


def register(
    app: faust.App,
    settings: Settings,
    *,
    ops: faust.TopicT,
    replies: faust.TopicT,
    dead_letter: DeadLetterFn,
) -> None:
    """Declare the book table and the agent that applies `quota.ops` to it."""
    table = app.Table(BOOK_TABLE, default=None, key_type=bytes)
    book = QuotaLedger(
        BookView(table), settings.tier_limits, rate=RateWindow.from_settings(settings)
    )

    @app.agent(ops, name="loglytics.ledger")
    async def own_budgets(stream: StreamT[bytes]) -> None:
        """Apply each op in partition order and answer its asker."""
        async for event in stream.events():
            op = await decoded(event, LedgerOp, "ledger", dead_letter)
            if op is None:
                continue
            try:
                reply = apply(book, op)
            except Exception as exc:  # no op may stop the owner of other tenants' budgets
                log.exception("ledger op %s failed", op.op_id)
                await dead_letter("ledger", f"{type(exc).__name__}: {exc}", event)
                continue
            if op.reply_to:
                await replies.send(key=op.reply_to.encode(), value=reply.to_bytes())
