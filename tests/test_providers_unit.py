"""Pieces of the provider pool that need no server: schemas, breaker, ledger, cache, tokens."""

from __future__ import annotations

import contextlib
import datetime as dt
import random
from typing import Annotated, Any, Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field

from loglytics.providers import (
    CircuitBreaker,
    CircuitState,
    OpenAIProvider,
    QuotaExceeded,
    QuotaLedger,
    RetryPolicy,
    SchemaBoundsError,
    json_schema_for,
    parse_output,
    structured_output,
)
from loglytics.providers.cache import TTLCache, cache_key
from loglytics.providers.catalog import PROVIDER_SPECS, ProviderSpec
from loglytics.providers.tokens import estimate_messages, estimate_tokens, usage_from

Short = Annotated[str, Field(max_length=40)]


class Inner(BaseModel):
    name: Short
    level: Literal["info", "error"]


class Outer(BaseModel):
    title: Short
    items: list[Inner] = Field(max_length=3)
    note: Short | None = None


class Clock:
    def __init__(self, t: float = 0.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


# ---------------------------------------------------------------- structured output


def test_schema_is_inlined_and_closed() -> None:
    schema = json_schema_for(Outer)
    assert "$defs" not in schema and "$ref" not in str(schema)
    item = schema["properties"]["items"]["items"]
    assert item["properties"]["name"]["maxLength"] == 40
    assert item["additionalProperties"] is False
    assert schema["additionalProperties"] is False


@pytest.mark.parametrize(
    ("annotation", "problem"),
    [
        (str, "string without maxLength"),
        (list[Short], "array without maxItems"),
        (dict[str, int], "open object"),
    ],
)
def test_unbounded_models_are_refused_at_definition(annotation: object, problem: str) -> None:
    with pytest.raises(SchemaBoundsError, match=problem):

        @structured_output
        class Bad(BaseModel):
            field: annotation  # type: ignore[valid-type]


def test_recursive_model_is_refused() -> None:
    class Node(BaseModel):
        name: Short
        children: list[Node] = Field(max_length=2)

    with pytest.raises(SchemaBoundsError, match="recursive"):
        json_schema_for(Node)


def test_parse_output_accepts_fenced_json_and_rejects_garbage() -> None:
    text = '```json\n{"title": "t", "items": [{"name": "a", "level": "info"}]}\n```'
    assert parse_output(Outer, text).items[0].name == "a"
    with pytest.raises(ValueError, match="items"):
        parse_output(Outer, '{"title": "t", "items": "nope"}')
    with pytest.raises(ValueError):
        parse_output(Outer, '{"title": "t", "items": [')  # truncated at max_tokens


# ---------------------------------------------------------------- tokens


def test_usage_prefers_provider_counts_and_flags_estimates() -> None:
    exact = usage_from(10, 5, messages=[], text="x")
    assert (exact.prompt_tokens, exact.completion_tokens, exact.estimated) == (10, 5, False)
    guess = usage_from(None, None, messages=[{"role": "user", "content": "a" * 40}], text="b" * 9)
    assert guess.estimated and guess.prompt_tokens == 14 and guess.completion_tokens == 3
    assert estimate_tokens("") == 0 and estimate_messages([]) == 0


# ---------------------------------------------------------------- breaker


def state(breaker: CircuitBreaker) -> CircuitState:
    """Read the state through a call so the type checker does not narrow it between steps."""
    return breaker.state


def test_breaker_opens_half_opens_and_closes() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=3, reset_seconds=10, clock=clock)
    for _ in range(2):
        breaker.record_failure()
    assert state(breaker) is CircuitState.CLOSED and breaker.allow()
    breaker.record_failure()
    assert state(breaker) is CircuitState.OPEN and not breaker.allow()
    clock.t = 10
    assert state(breaker) is CircuitState.HALF_OPEN
    assert breaker.allow() and not breaker.allow()  # one trial at a time
    breaker.record_failure()  # the trial failed: open again, timer restarted
    assert state(breaker) is CircuitState.OPEN
    clock.t = 20
    assert breaker.allow()
    breaker.record_success()
    assert state(breaker) is CircuitState.CLOSED and breaker.failures == 0


def test_retry_delays_grow_with_jitter_and_cap() -> None:
    policy = RetryPolicy(base_delay=0.1, max_delay=1.0)
    rng = random.Random(1)
    delays = [policy.delay(n, rng) for n in range(6)]
    assert 0.05 <= delays[0] <= 0.1 and 0.2 <= delays[2] <= 0.4
    assert all(0.5 <= d <= 1.0 for d in delays[4:])


# ---------------------------------------------------------------- quota ledger


class RecordingTable(dict[str, dict[str, Any]]):
    """Stands in for a Faust table: remembers every `__setitem__` (what gets persisted)."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[tuple[str, dict[str, Any]]] = []

    def __setitem__(self, key: str, value: dict[str, Any]) -> None:
        self.writes.append((key, dict(value)))
        super().__setitem__(key, value)


NOON = dt.datetime(2025, 3, 31, 12, 0, tzinfo=dt.UTC).timestamp()


def test_ledger_reserves_settles_and_writes_whole_state() -> None:
    """The hold is written with the counters (a new owner must see it), and goes on settle."""
    table = RecordingTable()
    ledger = QuotaLedger(table, lambda tier: (1000, 10), clock=Clock(NOON))
    res = ledger.reserve("acme", "free", 300)
    assert table["acme"]["holds"][res.id]["tokens"] == 300
    ledger.settle(res, 120)
    ledger.settle(res, 120)  # idempotent
    counters = {k: table["acme"][k] for k in ("month", "tokens", "day", "calls")}
    assert counters == {"month": "2025-03", "tokens": 120, "day": "2025-03-31", "calls": 1}
    assert table["acme"]["holds"] == {} and res.id in table["acme"]["settled"]
    assert [key for key, _ in table.writes] == ["acme", "acme"]  # reserve, settle once


def test_ledger_refuses_over_tokens_with_time_to_month_end() -> None:
    table: dict[str, dict[str, Any]] = {
        "acme": {"month": "2025-03", "tokens": 1000, "day": "x", "calls": 0}
    }
    ledger = QuotaLedger(table, lambda tier: (1000, 10), clock=Clock(NOON))
    with pytest.raises(QuotaExceeded) as info:
        ledger.reserve("acme", "free", 10)
    assert info.value.error == "quota_exceeded" and info.value.limit == 1000
    assert info.value.retry_after == pytest.approx(12 * 3600)  # to 2025-04-01T00:00Z


def test_ledger_refuses_over_calls_and_rolls_over_next_day() -> None:
    clock = Clock(NOON)
    ledger = QuotaLedger({}, lambda tier: (10**9, 2), clock=clock)
    for _ in range(2):
        ledger.settle(ledger.reserve("acme", "pro", 1), 1)
    with pytest.raises(QuotaExceeded) as info:
        ledger.reserve("acme", "pro", 1)
    assert info.value.limit == 2 and info.value.retry_after == pytest.approx(12 * 3600)
    clock.t += 13 * 3600  # next UTC day (and month): counters start over
    ledger.release(ledger.reserve("acme", "pro", 1))
    assert ledger.usage("acme")["calls"] == 0 and ledger.usage("acme")["tokens"] == 0


@settings(max_examples=60, deadline=None)
@given(
    limit=st.integers(0, 5000),
    sizes=st.lists(st.integers(1, 500), min_size=1, max_size=30),
    spend=st.floats(0.0, 1.0),
)
def test_in_flight_reservations_bound_the_overrun(
    limit: int, sizes: list[int], spend: float
) -> None:
    """However many calls are in flight at once, charges exceed the limit by < one call."""
    ledger = QuotaLedger({}, lambda tier: (limit, 10**6), clock=Clock(NOON))
    held = []
    for size in sizes:
        with contextlib.suppress(QuotaExceeded):
            held.append(ledger.reserve("t", "free", size))
    for res in held:
        ledger.settle(res, int(res.tokens * spend))
    charged = ledger.usage("t")["tokens"]
    assert charged <= limit + max(sizes)


# ---------------------------------------------------------------- cache


def test_cache_is_lru_and_expires() -> None:
    clock = Clock()
    cache: TTLCache[int] = TTLCache(2, ttl=10, clock=clock)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1
    cache.put("c", 3)  # evicts b, the least recently used
    assert cache.get("b") is None and cache.get("a") == 1
    clock.t = 11
    assert cache.get("a") is None and len(cache) == 1
    assert cache_key(a=1, b=[1, 2]) == cache_key(b=[1, 2], a=1) != cache_key(a=2, b=[1, 2])
    assert not TTLCache(0, 10).enabled


def test_provider_table_refuses_a_misspelt_settings_field() -> None:
    assert [spec.name for spec in PROVIDER_SPECS] == ["vllm", "ollama", "embedded"]
    with pytest.raises(ValueError, match="vlm_base_url"):
        ProviderSpec("vllm", "vlm_base_url", "vllm_model", None, OpenAIProvider, 4, ("pro",))
