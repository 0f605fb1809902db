"""The pool under failure, against small local HTTP servers that misbehave on purpose.

Each fake speaks the OpenAI chat API (what vLLM and llama.cpp speak) and
follows a script: answer, answer late, answer 500, answer garbage. A closed
port stands for a provider that is down. No model is needed, so these run fast.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import aclosing

import pytest
from prometheus_client import CollectorRegistry
from provider_fakes import MSGS, OK_JSON, FakeOpenAI, Step, Verdict, dead_provider, make_pool

from loglytics.providers import (
    CircuitState,
    InvalidOutput,
    LLMPool,
    LocalLedger,
    NoProviderAvailable,
    PoolResult,
    QuotaExceeded,
    QuotaLedger,
    RetryPolicy,
    StreamDelta,
)
from loglytics.providers.quota import Reservation
from loglytics.schemas import UsageRecord
from loglytics.settings import load_settings
from loglytics.storage.tables import LLM_USAGE


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI(name="good") as server:
        yield server


async def test_provider_down_falls_back_to_next(fake: FakeOpenAI) -> None:
    records: list[UsageRecord] = []
    pool = make_pool(dead_provider(), fake.provider(), records=records)
    result = await pool.complete(
        tenant="t", tier="free", task="analyze", messages=MSGS, output=Verdict
    )
    await pool.stop()
    assert result.provider == "good" and result.model == "good-model"
    assert result.data == Verdict(verdict="ok", score=3)
    assert [(r.provider, r.prompt_tokens, r.completion_tokens) for r in records] == [("good", 8, 6)]
    errors = pool.registry.get_sample_value(
        "loglytics_llm_errors_total", {"provider": "dead", "kind": "connect"}
    )
    assert errors == 3  # retried, then fell back


async def test_slow_provider_falls_back_within_one_timeout(fake: FakeOpenAI) -> None:
    async with FakeOpenAI(Step(delay=5.0), name="slow") as slow:
        pool = make_pool(slow.provider(), fake.provider(), timeout=0.6)
        began = time.perf_counter()
        result = await pool.complete(tenant="t", tier="pro", task="chat", messages=MSGS)
        elapsed = time.perf_counter() - began
        await pool.stop()
    assert result.provider == "good"
    assert 0.6 <= elapsed < 1.2  # one timeout for the slow one, then the fast answer
    assert slow.hits == 1  # a timeout used the whole budget: no retry on the same provider


async def test_500s_are_retried_then_fall_back(fake: FakeOpenAI) -> None:
    async with FakeOpenAI(Step(status=500), name="flaky") as flaky:
        pool = make_pool(flaky.provider(), fake.provider())
        result = await pool.complete(tenant="t", tier="free", task="chat", messages=MSGS)
        await pool.stop()
    assert flaky.hits == 3 and result.provider == "good"


async def test_500_then_success_is_retried_on_the_same_provider(fake: FakeOpenAI) -> None:
    async with FakeOpenAI(Step(status=503), Step(status=429), Step(), name="flaky") as flaky:
        pool = make_pool(flaky.provider(), fake.provider())
        result = await pool.complete(tenant="t", tier="free", task="chat", messages=MSGS)
        await pool.stop()
    assert flaky.hits == 3 and result.provider == "flaky" and fake.hits == 0


async def test_4xx_is_not_retried(fake: FakeOpenAI) -> None:
    async with FakeOpenAI(Step(status=400), name="picky") as picky:
        pool = make_pool(picky.provider(), fake.provider())
        result = await pool.complete(tenant="t", tier="free", task="chat", messages=MSGS)
        assert pool.circuit("picky") is CircuitState.CLOSED  # a bad request is not an outage
        await pool.stop()
    assert picky.hits == 1 and result.provider == "good"


async def test_invalid_output_is_repaired_once() -> None:
    async with FakeOpenAI(
        Step(content='{"verdict": "ok"', finish="length"), Step(), name="sloppy"
    ) as sloppy:
        pool = make_pool(sloppy.provider())
        result = await pool.complete(
            tenant="t", tier="free", task="analyze", messages=MSGS, output=Verdict
        )
        await pool.stop()
    assert result.repaired and result.data == Verdict(verdict="ok", score=3)
    assert result.usage.prompt_tokens == 16  # both attempts are charged
    repair_prompt = sloppy.bodies[1]["messages"]
    assert repair_prompt[-2] == {"role": "assistant", "content": '{"verdict": "ok"'}
    assert "cut off at max_tokens" in repair_prompt[-1]["content"]  # truncated JSON is repaired
    assert sloppy.bodies[0]["response_format"]["json_schema"]["strict"] is True


async def test_invalid_twice_raises_invalid_output_and_charges_tokens() -> None:
    ledger = QuotaLedger({}, lambda tier: (10_000, 100))
    records: list[UsageRecord] = []
    async with FakeOpenAI(Step(content="I think it is fine."), name="chatty") as chatty:
        pool = make_pool(chatty.provider(), ledger=ledger, records=records)
        with pytest.raises(InvalidOutput) as info:
            await pool.complete(
                tenant="t", tier="free", task="analyze", messages=MSGS, output=Verdict
            )
        await pool.stop()
    assert info.value.error == "invalid_output" and chatty.hits == 2
    assert ledger.usage("t")["tokens"] == 28 and len(records) == 1


async def test_circuit_opens_after_repeated_failures(fake: FakeOpenAI) -> None:
    async with FakeOpenAI(Step(status=500), name="broken") as broken:
        pool = make_pool(
            broken.provider(),
            fake.provider(),
            breaker_threshold=4,
            retry=RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.01),
        )
        for _ in range(2):
            await pool.complete(tenant="t", tier="free", task="chat", messages=MSGS)
        assert pool.circuit("broken") is CircuitState.OPEN
        await pool.complete(tenant="t", tier="free", task="chat", messages=MSGS)
        gauge = pool.registry.get_sample_value(
            "loglytics_llm_circuit_state", {"provider": "broken"}
        )
        await pool.stop()
    assert broken.hits == 4  # the third call skipped it
    assert gauge == 2


async def test_health_check_opens_circuit_of_unhealthy_provider(fake: FakeOpenAI) -> None:
    fake.healthy = False
    pool = make_pool(fake.provider(), health_interval=0.05)
    await pool.start()
    await asyncio.sleep(0.2)
    report = pool.health_snapshot()
    await pool.stop()
    assert report["providers"]["good"]["circuit"] == "open" and not report["ok"]
    assert "503" in report["providers"]["good"]["detail"]


async def test_quota_exceeded_makes_no_upstream_call(fake: FakeOpenAI) -> None:
    settings = load_settings(free_tokens_per_month=500)
    ledger = QuotaLedger({}, settings.tier_limits)
    ledger.settle(ledger.reserve("acme", "free", 0), 500)
    records: list[UsageRecord] = []
    pool = make_pool(fake.provider(), ledger=ledger, records=records)
    with pytest.raises(QuotaExceeded) as info:
        await pool.complete(tenant="acme", tier="free", task="chat", messages=MSGS)
    with pytest.raises(QuotaExceeded):
        async for _ in pool.stream(tenant="acme", tier="free", task="chat", messages=MSGS):
            pass
    await pool.stop()
    assert fake.hits == 0 and records == []
    assert info.value.limit == 500 and info.value.retry_after is not None
    assert 0 < info.value.retry_after <= 31 * 86400
    assert info.value.error == "quota_exceeded"


async def test_concurrent_calls_near_quota_cannot_overrun() -> None:
    limit, max_tokens = 300, 32
    ledger = QuotaLedger({}, lambda tier: (limit, 1000))
    usage = {"prompt_tokens": 7, "completion_tokens": max_tokens}
    async with FakeOpenAI(Step(delay=0.05, usage=usage), name="busy") as busy:
        pool = make_pool(busy.provider(parallel=4), ledger=ledger)
        outcomes = await asyncio.gather(
            *(
                pool.complete(
                    tenant="acme", tier="free", task="chat", messages=MSGS, max_tokens=max_tokens
                )
                for _ in range(20)
            ),
            return_exceptions=True,
        )
        await pool.stop()
    served = [o for o in outcomes if isinstance(o, PoolResult)]
    refused = [o for o in outcomes if isinstance(o, QuotaExceeded)]
    assert len(served) + len(refused) == 20  # no lost request, only typed outcomes
    one_call = 7 + max_tokens
    charged = ledger.usage("acme")["tokens"]
    assert charged == sum(r.usage.total for r in served) == busy.hits * one_call
    assert limit - one_call < charged <= limit + one_call
    assert refused


async def test_no_lost_request_under_mixed_failures() -> None:
    script = [Step(status=500), Step(), Step(delay=0.5), Step(content="nope"), Step()] * 6
    async with FakeOpenAI(*script, name="chaos") as chaos:
        pool = make_pool(
            chaos.provider(parallel=3),
            timeout=0.3,
            retry=RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.02),
            breaker_threshold=1000,
        )
        outcomes = await asyncio.gather(
            *(
                pool.complete(
                    tenant=f"t{i % 3}",
                    tier="free",
                    task="analyze",
                    messages=MSGS,
                    output=Verdict if i % 2 else None,
                )
                for i in range(20)
            ),
            return_exceptions=True,
        )
        await pool.stop()
    kinds = {type(o).__name__ for o in outcomes}
    assert kinds <= {"PoolResult", "NoProviderAvailable", "InvalidOutput"}, outcomes
    assert any(isinstance(o, PoolResult) for o in outcomes)


async def test_all_providers_down_is_a_typed_error() -> None:
    ledger = QuotaLedger({}, lambda tier: (10_000, 100))
    pool = make_pool(dead_provider("a"), dead_provider("b"), ledger=ledger)
    with pytest.raises(NoProviderAvailable, match=r"a: connect.*b: connect"):
        await pool.complete(tenant="t", tier="free", task="chat", messages=MSGS)
    await pool.stop()
    assert ledger.usage("t") == {
        **ledger.usage("t"),
        "tokens": 0,
        "calls": 0,
    }  # released, not charged


async def test_cache_hit_is_free_and_counted(fake: FakeOpenAI) -> None:
    records: list[UsageRecord] = []
    ledger = QuotaLedger({}, lambda tier: (10_000, 100))
    pool = make_pool(fake.provider(), ledger=ledger, records=records, cache_size=8)
    first = await pool.complete(
        tenant="t", tier="free", task="analyze", messages=MSGS, output=Verdict
    )
    second = await pool.complete(
        tenant="t", tier="free", task="analyze", messages=MSGS, output=Verdict
    )
    other = await pool.complete(
        tenant="u", tier="free", task="analyze", messages=MSGS, output=Verdict
    )
    hits = pool.registry.get_sample_value(
        "loglytics_llm_cache_hits_total", {"tier": "free", "task": "analyze"}
    )
    await pool.stop()
    assert not first.cached and second.cached and not other.cached  # never across tenants
    assert second.data == first.data and second.usage.total == 0
    assert fake.hits == 2 and hits == 1
    assert [r.cached for r in records] == [False, True, False]
    assert records[1].prompt_tokens == records[1].completion_tokens == 0
    assert ledger.usage("t")["tokens"] == 14


async def test_stream_falls_back_before_first_delta(fake: FakeOpenAI) -> None:
    pool = make_pool(dead_provider(), fake.provider())
    events = [
        e
        async for e in pool.stream(
            tenant="t", tier="free", task="chat", messages=MSGS, output=Verdict
        )
    ]
    await pool.stop()
    deltas = [e.text for e in events if isinstance(e, StreamDelta)]
    final = events[-1]
    assert isinstance(final, PoolResult) and final.provider == "good"
    assert "".join(deltas) == final.text == OK_JSON and final.data == Verdict(verdict="ok", score=3)
    assert final.usage.completion_tokens == 6


async def test_missing_usage_is_estimated(fake: FakeOpenAI) -> None:
    fake.script = [Step(usage=None)]
    pool = make_pool(fake.provider())
    result = await pool.complete(tenant="t", tier="free", task="chat", messages=MSGS)
    await pool.stop()
    assert result.usage.estimated and result.usage.completion_tokens == 8  # 29 chars / 4


async def test_pools_have_their_own_registries(fake: FakeOpenAI) -> None:
    shared = CollectorRegistry()
    a, b = make_pool(fake.provider()), make_pool(fake.provider(), registry=shared)
    assert a.registry is not b.registry and b.registry is shared
    await a.complete(tenant="t", tier="free", task="chat", messages=MSGS)
    calls = a.registry.get_sample_value(
        "loglytics_llm_calls_total",
        {"tier": "free", "task": "chat", "provider": "good", "outcome": "ok"},
    )
    tokens = a.registry.get_sample_value(
        "loglytics_llm_tokens_total", {"tier": "free", "provider": "good", "direction": "out"}
    )
    await a.stop()
    await b.stop()
    assert calls == 1 and tokens == 6


def test_from_settings_orders_tiers() -> None:
    settings = load_settings(
        vllm_base_url="http://127.0.0.1:9/v1",
        ollama_base_url="http://127.0.0.1:9",
        llamacpp_base_url="http://127.0.0.1:9",
    )
    pool = LLMPool.from_settings(settings, parallel={"embedded": 2})
    assert pool.tier_chain("pro") == ["vllm", "ollama", "embedded"]
    assert pool.tier_chain("free") == ["ollama", "embedded"]
    assert pool.providers["embedded"].max_parallel == 2
    only = LLMPool.from_settings(load_settings(llamacpp_base_url="http://127.0.0.1:9"))
    assert only.tier_chain("pro") == only.tier_chain("free") == ["embedded"]
    assert only.ledger is not None  # quotas are never skipped


async def test_stream_left_early_is_charged_and_frees_the_slot(fake: FakeOpenAI) -> None:
    records: list[UsageRecord] = []
    ledger = QuotaLedger({}, lambda tier: (10_000, 100))
    pool = make_pool(fake.provider(parallel=1), ledger=ledger, records=records)
    async with aclosing(pool.stream(tenant="t", tier="free", task="chat", messages=MSGS)) as events:
        async for event in events:
            assert isinstance(event, StreamDelta)
            break  # the client went away after the first delta
    await asyncio.sleep(0.05)  # the usage record of an abandoned call is emitted in the background
    again = await pool.complete(tenant="t", tier="free", task="chat", messages=MSGS)  # slot is free
    await pool.stop()
    assert again.provider == "good"
    assert records[0].estimated and records[0].completion_tokens == 2  # "{"ver" = 5 chars
    assert ledger.usage("t")["calls"] == 2 and ledger.usage("t")["tokens"] > 14


async def test_stream_is_retried_like_complete_before_its_first_delta(fake: FakeOpenAI) -> None:
    async with FakeOpenAI(Step(status=503), Step(status=429), Step(), name="flaky") as flaky:
        pool = make_pool(flaky.provider(), fake.provider())
        events = [e async for e in pool.stream(tenant="t", tier="free", task="chat", messages=MSGS)]
        errors = pool.registry.get_sample_value(
            "loglytics_llm_errors_total", {"provider": "flaky", "kind": "http_5xx"}
        )
        await pool.stop()
    final = events[-1]
    assert isinstance(final, PoolResult) and final.provider == "flaky" and final.text == OK_JSON
    assert flaky.hits == 3 and fake.hits == 0 and errors == 1


async def test_slow_stream_falls_back_within_one_timeout(fake: FakeOpenAI) -> None:
    async with FakeOpenAI(Step(delay=5.0), name="slow") as slow:
        pool = make_pool(slow.provider(), fake.provider(), timeout=0.6)
        began = time.perf_counter()
        events = [e async for e in pool.stream(tenant="t", tier="pro", task="chat", messages=MSGS)]
        elapsed = time.perf_counter() - began
        await pool.stop()
    final = events[-1]
    assert isinstance(final, PoolResult) and final.provider == "good"
    assert 0.6 <= elapsed < 1.2 and slow.hits == 1


async def test_stop_lets_a_call_in_flight_finish_within_the_grace() -> None:
    """The worker stops its runtime (and this pool) before its agents: a detection
    verdict on its way must still get its answer, not a closed client."""
    async with FakeOpenAI(Step(delay=0.5), name="slow") as slow:
        records: list[UsageRecord] = []
        pool = make_pool(slow.provider(), records=records, stop_grace=5.0)
        call = asyncio.ensure_future(
            pool.complete(tenant="t", tier="free", task="detect", messages=MSGS, output=Verdict)
        )
        while not slow.hits:
            await asyncio.sleep(0.01)
        await pool.stop()
        assert call.done(), "stop returned while the call was still running"
        result = call.result()
        assert result.data == Verdict(verdict="ok", score=3)
        assert [r.provider for r in records] == ["slow"]


async def test_stop_closes_after_the_grace_when_a_call_takes_longer() -> None:
    async with FakeOpenAI(Step(delay=5.0), name="slow") as slow:
        pool = make_pool(slow.provider(), stop_grace=0.3, timeout=10.0)
        call = asyncio.ensure_future(
            pool.complete(tenant="t", tier="free", task="detect", messages=MSGS)
        )
        while not slow.hits:
            await asyncio.sleep(0.01)
        began = time.perf_counter()
        await pool.stop()
        assert time.perf_counter() - began < 2.0, "a clean stop must stay prompt"
        with pytest.raises(NoProviderAvailable):
            await call


def billed(records: list[UsageRecord]) -> dict[tuple[object, ...], UsageRecord]:
    """The records as `llm_usage` keeps them: one per key of the table (ReplacingMergeTree)."""
    return {tuple(getattr(r, c) for c in LLM_USAGE.order_by): r for r in records}


async def test_a_call_run_by_two_workers_at_once_is_billed_once() -> None:
    """Around a rebalance a request can run on its first owner and on the partition's next
    owner at the same time: both runs hold one call id, both reach the model, and the
    ledger charges the call once. Both report usage at the time the call was first held,
    so their records share one `llm_usage` key: one row, billed once."""
    book = QuotaLedger({}, load_settings().tier_limits)
    records: list[UsageRecord] = []
    async with FakeOpenAI(Step(delay=0.3), name="slow") as slow:
        workers = [make_pool(slow.provider(), ledger=book, records=records) for _ in range(2)]
        await asyncio.gather(
            *(
                pool.complete(
                    tenant="acme",
                    tier="free",
                    task="chat",
                    messages=MSGS,
                    request_id="r1",
                    call_id="r1:1",
                )
                for pool in workers
            )
        )
        for pool in workers:
            await pool.stop()
    assert slow.hits == 2 and len(records) == 2
    (row,) = billed(records).values()
    assert (row.request_id, row.prompt_tokens + row.completion_tokens) == ("r1", 14)
    assert book.usage("acme")["tokens"] == 14 and book.usage("acme")["calls"] == 1


async def test_usage_is_on_its_way_out_before_the_call_is_settled(fake: FakeOpenAI) -> None:
    """A call the ledger shows settled has reported its usage: a worker killed between the
    two leaves a hold (its next run reports and settles), never a settled call with no
    usage record, which the next run, told `already_settled`, would not report."""
    order: list[str] = []

    class Ledger(LocalLedger):
        async def settle(
            self, reservation: Reservation, actual_tokens: int, *, count_call: bool = True
        ) -> None:
            order.append("settle")
            await super().settle(reservation, actual_tokens, count_call=count_call)

    async def on_usage(record: UsageRecord) -> None:
        await asyncio.sleep(0.05)  # the broker's acknowledgement
        order.append("usage")

    pool = LLMPool(
        {"free": [fake.provider()]},
        ledger=Ledger(QuotaLedger({}, load_settings().tier_limits)),
        on_usage=on_usage,
        cache_size=0,
    )
    await pool.complete(tenant="acme", tier="free", task="chat", messages=MSGS, call_id="c1")
    await pool.stop()
    assert order == ["usage", "settle"]
