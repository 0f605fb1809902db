"""What the pool hands back and how it retries: `PoolResult`, `PoolStreamEvent`, `RetryPolicy`.

Why a module of their own: callers (tasks, detection, the worker) import
these shapes without needing the pool's machinery, and the attempt loop uses
`RetryPolicy` without importing the pool.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TypeVar

from pydantic import BaseModel

from loglytics.providers.base import StreamDelta
from loglytics.schemas import TokenUsage

M = TypeVar("M", bound=BaseModel)


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
