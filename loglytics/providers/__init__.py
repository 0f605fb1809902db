"""The tier-aware LLM provider pool; every LLM call in the product goes through `LLMPool`."""

from loglytics.providers.base import (
    ChatRequest,
    ChatResult,
    HealthInfo,
    Provider,
    StreamDelta,
    StreamEvent,
)
from loglytics.providers.breaker import CircuitBreaker, CircuitState
from loglytics.providers.errors import (
    InvalidOutput,
    NoProviderAvailable,
    PoolError,
    ProviderError,
    QuotaExceeded,
    RateLimited,
    SchemaBoundsError,
)
from loglytics.providers.ledger import Ledger, LocalLedger
from loglytics.providers.ollama import OllamaProvider
from loglytics.providers.openai import OpenAIProvider
from loglytics.providers.pool import LLMPool
from loglytics.providers.quota import QuotaLedger, RateWindow, Reservation
from loglytics.providers.results import PoolResult, PoolStreamEvent, RetryPolicy
from loglytics.providers.structured import json_schema_for, parse_output, structured_output

__all__ = [
    "ChatRequest",
    "ChatResult",
    "CircuitBreaker",
    "CircuitState",
    "HealthInfo",
    "InvalidOutput",
    "LLMPool",
    "Ledger",
    "LocalLedger",
    "NoProviderAvailable",
    "OllamaProvider",
    "OpenAIProvider",
    "PoolError",
    "PoolResult",
    "PoolStreamEvent",
    "Provider",
    "ProviderError",
    "QuotaExceeded",
    "QuotaLedger",
    "RateLimited",
    "RateWindow",
    "Reservation",
    "RetryPolicy",
    "SchemaBoundsError",
    "StreamDelta",
    "StreamEvent",
    "json_schema_for",
    "parse_output",
    "structured_output",
]
