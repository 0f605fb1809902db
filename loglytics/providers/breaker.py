"""A circuit breaker per provider: stop sending work to a backend that keeps failing.

Why: without it every call to a dead Ollama waits out connect retries before
falling back, so one dead box adds latency to every request. After
`failure_threshold` consecutive failures the circuit opens and the pool skips
the provider; after `reset_seconds` one trial call is let through (half-open);
its success closes the circuit, its failure opens it again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum


class CircuitState(StrEnum):
    CLOSED = "closed"
    HALF_OPEN = "half_open"
    OPEN = "open"

    @property
    def gauge(self) -> int:
        """0 closed, 1 half-open, 2 open: higher is worse, for dashboards."""
        return {"closed": 0, "half_open": 1, "open": 2}[self.value]


class CircuitBreaker:
    """Consecutive-failure breaker with a single half-open trial at a time."""

    def __init__(
        self,
        *,
        failure_threshold: int = 5,
        reset_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be >= 1")
        self.failure_threshold = failure_threshold
        self.reset_seconds = reset_seconds
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_in_flight = False

    @property
    def state(self) -> CircuitState:
        if self._opened_at is None:
            return CircuitState.CLOSED
        if self._clock() - self._opened_at >= self.reset_seconds:
            return CircuitState.HALF_OPEN
        return CircuitState.OPEN

    @property
    def failures(self) -> int:
        return self._failures

    def allow(self) -> bool:
        """May a call go out now? In half-open, only the first caller gets the trial."""
        state = self.state
        if state is CircuitState.CLOSED:
            return True
        if state is CircuitState.HALF_OPEN and not self._trial_in_flight:
            self._trial_in_flight = True
            return True
        return False

    def record_success(self) -> None:
        self._failures = 0
        self._opened_at = None
        self._trial_in_flight = False

    def record_failure(self) -> None:
        self._failures += 1
        self._trial_in_flight = False
        if self._opened_at is not None or self._failures >= self.failure_threshold:
            self._opened_at = self._clock()

    def release_trial(self) -> None:
        """A trial call ended without a verdict (e.g. cancelled): let another caller try."""
        self._trial_in_flight = False

    def trip(self) -> None:
        """Open now (a failed health check is a verdict on its own)."""
        self._failures = max(self._failures, self.failure_threshold)
        self._opened_at = self._clock()
        self._trial_in_flight = False
