"""The quota ledger's request rate window: exact, sliding, kept beside the quotas."""

from __future__ import annotations

from typing import Any

import pytest

from loglytics.providers import QuotaLedger, RateLimited
from loglytics.providers.quota import RateWindow
from loglytics.settings import load_settings


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def ledger(state: dict[str, dict[str, Any]], clock: Clock, rate: RateWindow | None) -> QuotaLedger:
    return QuotaLedger(state, lambda tier: (1000, 1000), clock=clock, rate=rate)


def test_exactly_the_limit_is_admitted_then_the_oldest_must_leave() -> None:
    clock, state = Clock(), dict[str, dict[str, Any]]()
    quotas = ledger(state, clock, RateWindow(5, 60))
    for _ in range(5):
        quotas.admit_request("acme")
        clock.now += 1
    with pytest.raises(RateLimited) as refused:
        quotas.admit_request("acme")
    assert refused.value.limit == 5 and refused.value.error == "rate_limited"
    assert refused.value.retry_after == pytest.approx(55)  # the first leaves at t0 + 60
    quotas.admit_request("other")  # per tenant
    clock.now += 55.01
    quotas.admit_request("acme")  # one slot came free, and only one
    with pytest.raises(RateLimited):
        quotas.admit_request("acme")
    status = quotas.rate_status("acme")
    assert status.used == 5 and status.limit == 5 and status.resets_in > 0


def test_the_window_lives_in_the_shared_state_beside_the_counters() -> None:
    """A second ledger over the same state (another worker, after a rebalance) sees it;
    settling a call keeps the window."""
    clock, state = Clock(), dict[str, dict[str, Any]]()
    first = ledger(state, clock, RateWindow(2, 60))
    first.admit_request("acme")
    held = first.reserve("acme", "free", 10)
    first.settle(held, 7)
    second = ledger(state, clock, RateWindow(2, 60))
    second.admit_request("acme")
    with pytest.raises(RateLimited):
        second.admit_request("acme")
    assert second.usage("acme")["tokens"] == 7 and second.usage("acme")["calls"] == 1


def test_disabled_rate_limiting_admits_everything() -> None:
    quotas = ledger({}, Clock(), None)
    for _ in range(1000):
        quotas.admit_request("acme")
    assert quotas.rate_status("acme").limit is None


def test_the_settings_build_the_window_and_accept_the_briefs_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RATE_LIMIT_REQUESTS", "5")
    monkeypatch.setenv("RATE_LIMIT_WINDOW", "60")
    monkeypatch.setenv("DEFAULT_LLM_MODEL", "llama3.1:8b")
    monkeypatch.setenv("MAVERICK_MODEL_NAME", "maverick")
    monkeypatch.setenv("FREE_TIER_LIMITS", '{"max_llm_tokens_per_month": 5000}')
    monkeypatch.setenv("PRO_TIER_LIMITS", '{"max_api_calls_per_day": 7}')
    settings = load_settings()
    assert RateWindow.from_settings(settings) == RateWindow(5, 60.0)
    assert settings.ollama_model == "llama3.1:8b" and settings.vllm_model == "maverick"
    assert settings.tier_limits("free") == (5000, 1000)
    assert settings.tier_limits("pro") == (1_000_000, 7)
    monkeypatch.setenv("RATE_LIMIT_ENABLED", "false")
    assert RateWindow.from_settings(load_settings()) is None
