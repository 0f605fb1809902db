"""Typed errors: what the pool raises to its callers, and what providers raise to the pool.

Why typed: the worker turns a `PoolError` straight into an `ErrorInfo` on the
reply topic (`error`, `retry_after`, `limit` carry over one to one), and the
pool decides retry/fallback from `ProviderError.retryable` alone, never by
parsing messages.
"""

from __future__ import annotations


class PoolError(Exception):
    """A call the pool could not serve; `error` is the machine-readable kind."""

    error: str = "internal"

    def __init__(
        self, message: str, *, retry_after: float | None = None, limit: int | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after
        self.limit = limit


class QuotaExceeded(PoolError):
    """The tenant's tier limit is reached; no upstream call was made.

    `retry_after` is the number of seconds until the limit resets (next UTC day
    for calls, next UTC month for tokens); `limit` is the limit that was hit.
    """

    error = "quota_exceeded"

    def __init__(self, message: str, *, retry_after: float, limit: int) -> None:
        super().__init__(message, retry_after=retry_after, limit=limit)


class RateLimited(PoolError):
    """The tenant sent `limit` requests within the sliding window; `retry_after` is the
    number of seconds until the oldest of them leaves it (a request is admitted again)."""

    error = "rate_limited"

    def __init__(self, message: str, *, retry_after: float, limit: int) -> None:
        super().__init__(message, retry_after=retry_after, limit=limit)


class NoProviderAvailable(PoolError):
    """Every provider of the tier failed, timed out or has its circuit open."""

    error = "no_provider"


class InvalidOutput(PoolError):
    """The model's reply did not validate against the task's schema, even after one repair."""

    error = "invalid_output"

    def __init__(self, message: str, *, text: str = "") -> None:
        super().__init__(message)
        self.text = text


class SchemaBoundsError(TypeError):
    """An output model has a string without `maxLength` or an array without `maxItems`.

    Raised when the model is declared (see `structured_output`) so that prompt
    authors find unbounded fields before a model fills them with 8k tokens.
    """


class ProviderError(Exception):
    """One upstream call failed; `retryable` decides between retry and moving on.

    `kind` labels metrics: timeout, connect, http_429, http_5xx, http_4xx, protocol.
    Build one with the constructors below so `retryable` is never guessed.
    """

    def __init__(
        self, message: str, *, kind: str, retryable: bool, status: int | None = None
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.retryable = retryable
        self.status = status

    @classmethod
    def timeout(cls, message: str) -> ProviderError:
        return cls(message, kind="timeout", retryable=True)

    @classmethod
    def connect(cls, message: str) -> ProviderError:
        return cls(message, kind="connect", retryable=True)

    @classmethod
    def protocol(cls, message: str) -> ProviderError:
        """A malformed or cut-off reply: the server is up but misbehaving, so try again."""
        return cls(message, kind="protocol", retryable=True)

    @classmethod
    def http(cls, status: int, message: str) -> ProviderError:
        if status == 429:
            kind = "http_429"
        elif status >= 500:
            kind = "http_5xx"
        else:
            kind = "http_4xx"
        return cls(
            f"HTTP {status}: {message}",
            kind=kind,
            retryable=retryable_status(status),
            status=status,
        )


def retryable_status(status: int) -> bool:
    """429 and 5xx are worth retrying; other 4xx are the request's fault and would fail again."""
    return status == 429 or status >= 500
