"""The quota ledger stage: one owner per tenant's budget, asked over Kafka."""

from loglytics.ledger.agent import BOOK_TABLE, register
from loglytics.ledger.client import LedgerUnavailable, RemoteLedger

__all__ = ["BOOK_TABLE", "LedgerUnavailable", "RemoteLedger", "register"]
