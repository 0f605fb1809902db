"""Integration: three real workers in one consumer group on the embedded broker.

One cluster per module (three `loglytics worker` processes sharing an app id, each
with its own ClickHouse directory) and a fake LLM that holds `SLOW` chat requests a
few seconds, so they are in flight when the cluster changes under them. Each test has
tenants of its own. The guarantees:

* a tenant added while the workers run is accepted on every partition within seconds;
* sixty concurrent calls for one tenant near its token limit, on every worker,
  detection and requests mixed, overrun the limit by at most one call;
* `kill -9` of a worker mid-stream: every line counted once in its window, every
  finding stored once, every request answered exactly once (the first final reply
  kept), none unanswered, and each charged once;
* a fourth worker joining mid-stream: the same across the rebalance.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from kafka_io import produce, read_all, wait_for
from scale_cluster import (
    PARTITIONS,
    Asked,
    Cluster,
    LLMThread,
    ask_all,
    assigned,
    final_replies_on_topic,
    latest,
)
from scale_stream import Disruption, LogStream, Traffic, log_stream, run_traffic, slow_chat
from test_requests_support import add_tenant, request, uid
from worker_proc import WorkerProcess

from loglytics.embedded.stack import StackState
from loglytics.ledger import RemoteLedger
from loglytics.schemas import LedgerStatus, LLMRequest
from loglytics.settings import Tier
from loglytics.storage.tables import LLM_USAGE

SLOW_SECONDS = 2.0
FREE_TOKENS = 1_000
CALL_TOKENS = 50  # what the fake LLM reports for every call (40 prompt + 10 completion)
TOPICS = ("logs.raw", "logs.windows", "findings", "llm.requests")
pytestmark = pytest.mark.timeout(420)


@dataclass
class Rig:
    stack: StackState
    cluster: Cluster
    llm: LLMThread


@pytest.fixture(scope="module")
def rig(stack: StackState, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    llm = LLMThread(slow=SLOW_SECONDS)
    url = llm.start()
    env: dict[str, str | float] = {
        "llamacpp_base_url": url,
        "llm_timeout_seconds": 30,
        "rate_limit_requests": 100_000,
        "free_tokens_per_month": FREE_TOKENS,
        "window_seconds": 10,
        "allowed_lateness_seconds": 0,
        "window_idle_close_seconds": 2,
    }
    cluster = Cluster(stack, tmp_path_factory.mktemp("scale"), env)
    for _ in range(3):
        cluster.add()
    try:
        cluster.start()
        yield Rig(stack, cluster, llm)
    finally:
        cluster.stop()
        llm.stop()


def on_every_partition(
    tenant: str, key: str, per_partition: int
) -> list[tuple[LLMRequest, int | None]]:
    return [
        (request(tenant, key, "models"), p) for p in range(PARTITIONS) for _ in range(per_partition)
    ]


def wait_accepted_everywhere(rig: Rig, tenant: str, key: str, timeout: float) -> float:
    """Seconds until a request on every partition is accepted (rounds of one per partition)."""
    began = time.monotonic()
    while True:
        asked = asyncio.run(ask_all(rig.cluster.kafka, on_every_partition(tenant, key, 1), 30))
        if all(f and f[0].ok for f in asked.finals.values()):
            return time.monotonic() - began
        if time.monotonic() - began > timeout:
            outcomes = Counter(
                "unanswered" if not f else f[0].error.error if f[0].error else "ok"
                for f in asked.finals.values()
            )
            raise AssertionError(f"not accepted on every partition in {timeout}s: {outcomes}")
        time.sleep(0.5)


def ledger_status(rig: Rig, tenant: str, tier: Tier) -> LedgerStatus:
    async def ask() -> LedgerStatus:
        ledger = RemoteLedger(rig.cluster.kafka, partitions=PARTITIONS)
        await ledger.start()
        try:
            return await ledger.status(tenant, tier)
        finally:
            await ledger.stop()

    return asyncio.run(ask())


def settled_status(rig: Rig, tenant: str, tier: Tier, timeout: float = 60) -> LedgerStatus:
    """The tenant's counters once no call holds any of its budget (every call settled)."""
    deadline = time.monotonic() + timeout
    status = ledger_status(rig, tenant, tier)
    while status.held_tokens and time.monotonic() < deadline:
        time.sleep(1)
        status = ledger_status(rig, tenant, tier)
    assert status.held_tokens == 0, status
    return status


def test_a_tenant_added_while_three_workers_run_is_accepted_on_every_partition(rig: Rig) -> None:
    tenant = f"late-{uid()}"
    key = add_tenant(rig.stack, tenant, "pro")
    took = wait_accepted_everywhere(rig, tenant, key, timeout=15)
    asked = asyncio.run(ask_all(rig.cluster.kafka, on_every_partition(tenant, key, 4), 30))
    assert not asked.unanswered
    errors = [f[0].error for f in asked.finals.values() if f[0].error is not None]
    assert not errors, errors
    assert all(len(f) == 1 for f in asked.finals.values())
    print(f"tenant accepted on every partition {took:.1f}s after it was added")


def precharge(rig: Rig, tenant: str, tier: Tier, tokens: int) -> None:
    """Charge `tokens` to the tenant through the ledger, as one settled call."""

    async def charge() -> None:
        ledger = RemoteLedger(rig.cluster.kafka, partitions=PARTITIONS)
        await ledger.start()
        try:
            held = await ledger.reserve(tenant, tier, tokens, call_id=f"pre-{uid()}")
            await ledger.settle(held, tokens)
        finally:
            await ledger.stop()

    asyncio.run(charge())


def billed_usage(rig: Rig, tenant: str) -> list[dict[str, Any]]:
    """The tenant's usage records as `llm_usage` keeps them: one per key of the table."""
    usage = [u for u in asyncio.run(read_all(rig.stack.kafka, "usage")) if u["tenant"] == tenant]
    return list({tuple(u[c] for c in LLM_USAGE.order_by): u for u in usage}.values())


def test_sixty_concurrent_calls_near_the_token_limit_overrun_it_by_at_most_one_call(
    rig: Rig,
) -> None:
    """Free tier, 1,000 tokens a month, 100 of them left: 60 slow chat calls keyed by
    request id (every worker) while the tenant's logs ask for detection verdicts on every
    worker. Whatever each worker sees, the owner of the tenant's budget admits calls only
    while used plus held is under the limit."""
    tenant = f"quota-{uid()}"
    key = add_tenant(rig.stack, tenant, "free")
    wait_accepted_everywhere(rig, tenant, key, timeout=30)
    before = FREE_TOKENS - 100
    precharge(rig, tenant, "free", before)
    logs = log_stream(tenant, windows=3, prefix="q")
    calls: list[tuple[LLMRequest, int | None]] = [(slow_chat(tenant, key), None) for _ in range(60)]

    async def run() -> Asked:
        _, asked = await asyncio.gather(
            produce(rig.stack.kafka, "logs.raw", logs.messages),
            ask_all(rig.cluster.kafka, calls, 90),
        )
        return asked

    asked = asyncio.run(run())
    assert not asked.unanswered
    outcomes = Counter(f[0].error.error if f[0].error else "ok" for f in asked.finals.values())
    assert set(outcomes) == {"ok", "quota_exceeded"}, outcomes
    wait_for(
        rig.stack.kafka,
        "findings",
        lambda recs: sum(r["tenant"] == tenant for r in recs) >= len(logs.expected),
        60,
        "the tenant's findings",
    )
    status = settled_status(rig, tenant, "free")
    usage = billed_usage(rig, tenant)
    detections = sum(u["task"] == "detect" for u in usage) + sum(
        f"no LLM verdict for {tenant}" in w.log_file.read_text(errors="replace")
        for w in rig.cluster.workers
    )
    print(f"quota: {outcomes}, {status.tokens} tokens charged, detection asked: {detections}")
    assert detections, "detection never asked for the tenant's budget"
    assert status.token_limit == FREE_TOKENS
    assert status.tokens <= FREE_TOKENS + CALL_TOKENS, status  # one call over, at most
    charged = sum(u["prompt_tokens"] + u["completion_tokens"] for u in usage)
    assert status.tokens == before + charged  # each admitted call charged once
    assert charged >= outcomes["ok"] * CALL_TOKENS


# --- kill -9 and a worker joining -------------------------------------------------------


def check_requests(rig: Rig, traffic: Traffic) -> int:
    """Each request answered exactly once, successfully; the repeats seen on the topic."""
    asked = traffic.asked
    assert not asked.unanswered, f"{len(asked.unanswered)} unanswered\n{rig.cluster.tails()}"
    assert all(len(f) == 1 for f in asked.finals.values())
    failed = [f[0].error for f in asked.finals.values() if f[0].error is not None]
    assert not failed, failed[:5]
    records = asyncio.run(read_all(rig.stack.kafka, "llm.responses"))
    on_topic = final_replies_on_topic(records, set(traffic.sent))
    assert min(on_topic.values()) >= 1
    return sum(on_topic.values()) - len(on_topic)


def check_charged_once(rig: Rig, traffic: Traffic, status: LedgerStatus) -> None:
    """The ledger charged each request what its (first) reply says it used, once, and the
    usage records count each request once too, as `llm_usage` keeps them (one row per key
    of the table: two runs of one call report at the time it was first held)."""
    replies = {rid: f[0] for rid, f in traffic.asked.finals.items()}
    owed = sum(r.tokens_used.total for r in replies.values())
    assert owed == CALL_TOKENS * len(replies)
    assert status.tokens == owed, f"charged {status.tokens} for {owed} tokens of replies"
    tenant = next(iter(replies.values())).tenant
    per_request = Counter[str]()
    for u in billed_usage(rig, tenant):
        per_request[u["request_id"]] += u["prompt_tokens"] + u["completion_tokens"]
    assert set(per_request) == set(replies)
    doubled = {rid: n for rid, n in per_request.items() if n != replies[rid].tokens_used.total}
    assert not doubled, f"usage records of {len(doubled)} requests count more than once"


def check_windows_and_findings(rig: Rig, logs: LogStream) -> None:
    """Every line once in its window and every finding once, over every worker's ClickHouse."""

    def lines(recs: list[dict[str, object]]) -> int:
        mine = {(r["source"], r["window_start"]): r for r in recs if r["tenant"] == logs.tenant}
        return sum(int(str(w["line_count"])) for w in mine.values())

    wait_for(rig.stack.kafka, "logs.windows", lambda r: lines(r) >= logs.lines, 90, "windows")
    findings_wanted = len(logs.expected)
    wait_for(
        rig.stack.kafka,
        "findings",
        lambda recs: (
            len({r["finding_id"] for r in recs if r["tenant"] == logs.tenant}) >= findings_wanted
        ),
        90,
        f"{findings_wanted} findings",
    )
    lag = rig.cluster.wait_settled(TOPICS, 60)
    assert lag == 0, f"offsets not committed: lag {lag}"
    rig.cluster.stop()  # chdb: a directory is read by one process at a time
    windows = latest(
        rig.cluster.rows(
            "SELECT source, toFloat64(window_start), line_count, ingested_at FROM windows "
            "WHERE tenant = {t:String}",
            logs.tenant,
        ),
        key_len=2,
    )
    assert Counter({key: row[2] for key, row in windows.items()}) == logs.expected
    stored = latest(
        rig.cluster.rows(
            "SELECT finding_id, ingested_at FROM findings WHERE tenant = {t:String}", logs.tenant
        ),
        key_len=1,
    )
    findings = asyncio.run(read_all(rig.stack.kafka, "findings"))
    on_topic = {r["finding_id"] for r in findings if r["tenant"] == logs.tenant}
    missing, extra = on_topic - {k[0] for k in stored}, {k[0] for k in stored} - on_topic
    assert not missing and not extra, f"{len(missing)} findings not stored, {len(extra)} extra"
    assert len(on_topic) == findings_wanted


def scenario(rig: Rig, disrupt: Disruption, name: str) -> tuple[Traffic, int]:
    """Requests and logs flowing while `disrupt` changes the cluster; every guarantee
    checked; the number of slow LLM calls made (a request served twice makes two)."""
    rig.cluster.start()  # the previous test stopped the cluster to read its directories
    tenant = f"{name}-{uid()}"
    key = add_tenant(rig.stack, tenant, "pro")
    wait_accepted_everywhere(rig, tenant, key, timeout=30)
    logs = log_stream(f"{name}-logs-{uid()}", windows=8)
    slow_before = rig.llm.fake.slow_started
    began = time.monotonic()
    traffic = asyncio.run(
        run_traffic(
            rig.cluster.kafka,
            tenant,
            key,
            logs,
            disrupt,
            per_wave=4,
            disrupt_after_waves=4,
        )
    )
    took = {"traffic": time.monotonic() - began}
    repeats = check_requests(rig, traffic)
    runs = rig.llm.fake.slow_started - slow_before
    status = settled_status(rig, tenant, "pro")
    took["settled"] = time.monotonic() - began
    check_windows_and_findings(rig, logs)
    took["stored"] = time.monotonic() - began
    print(
        f"{name}: seconds since the traffic began:"
        + ", ".join(f" {k} {v:.0f}" for k, v in took.items())
    )
    print(
        f"{name}: {len(traffic.sent)} requests, {runs} slow LLM calls, {repeats} repeated"
        f" final replies on the topic, {traffic.asked.duplicates_dropped} dropped by the client"
    )
    check_charged_once(rig, traffic, status)
    return traffic, runs


def test_kill_9_mid_stream_counts_every_line_once_and_answers_every_request_once(rig: Rig) -> None:
    victim = rig.cluster.workers[0]

    def kill() -> None:
        victim.kill()

    traffic, runs = scenario(rig, kill, "kill")
    # The victim had requests in flight: the next owner of their partitions ran them again.
    assert runs > len(traffic.sent), "no request was served again after the kill"


def test_a_fourth_worker_joining_mid_stream_keeps_every_guarantee(rig: Rig) -> None:
    joined: list[WorkerProcess] = []

    def join() -> Callable[[], None]:
        joiner = rig.cluster.add()  # its web port picked now, free now
        joined.append(joiner)
        marker = joiner.spawn()
        return lambda: joiner.wait_ready(marker, timeout=120)

    try:
        scenario(rig, join, "join")
        assert assigned(joined[0], "llm.requests"), "the fourth worker took no partition"
    finally:
        for joiner in joined:
            joiner.stop()
