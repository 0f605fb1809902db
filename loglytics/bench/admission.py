"""What admission adds to one LLM call: quota round trips to the tenant's ledger owner.

Every call reserves its tokens before it reaches a model and settles what it
used after; both are a request/reply over Kafka (`loglytics.ledger`) to the
worker that owns the tenant's ledger partition, wherever the call runs. This
times those round trips from a client process (this one, as a gateway would
be) against one running worker on the same embedded broker: sequential calls,
so each one is a full round trip with nothing to overlap it, after a warm-up
(the first ops wait for the worker's assignment and the clients' metadata).
"""

from __future__ import annotations

import math
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from loglytics.embedded.stack import StackState
from loglytics.embedded.worker import WorkerProcess
from loglytics.kafka_clients import KafkaConnection
from loglytics.ledger import RemoteLedger
from loglytics.settings import Tier

TIER: Final[Tier] = "pro"
RESERVE_TOKENS: Final = 64
USED_TOKENS: Final = 48
LEASE_S: Final = 60.0


def percentile_ms(seconds: list[float], fraction: float) -> float:
    """Nearest-rank percentile of `seconds`, in milliseconds."""
    ordered = sorted(seconds)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return round(ordered[rank - 1] * 1000, 2)


@dataclass(frozen=True)
class Admission:
    """Per-call round trips: the reservation alone and reservation plus settlement."""

    reserve_s: list[float]
    call_s: list[float]

    def summary(self) -> dict[str, Any]:
        return {
            "admission_calls": len(self.call_s),
            "admission_p50_ms": percentile_ms(self.call_s, 0.50),
            "admission_p99_ms": percentile_ms(self.call_s, 0.99),
            "admission_max_ms": percentile_ms(self.call_s, 1.0),
            "reserve_p50_ms": percentile_ms(self.reserve_s, 0.50),
            "reserve_p99_ms": percentile_ms(self.reserve_s, 0.99),
        }


async def round_trips(ledger: RemoteLedger, tenant: str, calls: int) -> Admission:
    """`calls` sequential reserve-then-settle pairs for one tenant, each timed."""
    reserve_s: list[float] = []
    call_s: list[float] = []
    for _ in range(calls):
        began = time.perf_counter()
        held = await ledger.reserve(
            tenant, TIER, RESERVE_TOKENS, call_id=f"bench-{uuid.uuid4().hex}", lease_s=LEASE_S
        )
        reserved = time.perf_counter()
        await ledger.settle(held, USED_TOKENS)
        call_s.append(time.perf_counter() - began)
        reserve_s.append(reserved - began)
    return Admission(reserve_s, call_s)


async def measure(kafka: KafkaConnection, partitions: int, calls: int, warmup: int) -> Admission:
    """Warm up, then time `calls` calls through one `RemoteLedger` client."""
    ledger = RemoteLedger(kafka, partitions=partitions)
    await ledger.start()
    try:
        tenant = f"scale-admission-{uuid.uuid4().hex[:6]}"
        await round_trips(ledger, tenant, warmup)
        return await round_trips(ledger, tenant, calls)
    finally:
        await ledger.stop()


def running_worker(stack: StackState, workdir: Path, partitions: int) -> WorkerProcess:
    """One worker on the stack, started and ready (its ledger agent owns every partition)."""
    worker = WorkerProcess(stack, workdir, topic_partitions=partitions)
    worker.start(timeout=120.0)
    return worker
