"""Quota and provider failures as replies (Kafka and HTTP), and tier changes taking effect.

One worker with a free tier of 0 tokens a month and its only LLM provider on a
closed port: a free tenant is refused by quota (before any provider is tried),
a pro tenant gets `no_provider`. Moving a tenant from free to pro with the
`tenants` CLI while the worker runs changes which of the two its next call gets.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from test_requests_support import (
    WORKER_ENV,
    add_tenant,
    call_all,
    cli_env,
    final,
    request,
    run_ask,
    uid,
    wait_accepted,
)
from worker_proc import WorkerProcess

from loglytics.clients import Reply
from loglytics.embedded.gateway import GatewayProcess
from loglytics.embedded.ports import free_port
from loglytics.embedded.stack import StackState


class Faulty:
    def __init__(self, stack: StackState, tmp: Path, worker: WorkerProcess) -> None:
        self.stack, self.tmp, self.worker = stack, tmp, worker
        self.gateway = GatewayProcess(stack, tmp)
        self.free, self.pro = f"free-{uid()}", f"pro-{uid()}"
        self.free_key = self.pro_key = ""

    @property
    def base(self) -> str:
        return f"{self.gateway.base}/api/v1/llm"


@pytest.fixture(scope="module")
def faulty(stack: StackState, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Faulty]:
    tmp = tmp_path_factory.mktemp("faults")
    worker = WorkerProcess(
        stack,
        tmp,
        free_tokens_per_month=0,
        llamacpp_base_url=f"http://127.0.0.1:{free_port()}",
        **WORKER_ENV,
    )
    f = Faulty(stack, tmp, worker)
    f.free_key, f.pro_key = add_tenant(stack, f.free), add_tenant(stack, f.pro, "pro")
    worker.start()
    try:
        f.gateway.start()
        wait_accepted(stack, f.free, f.free_key)
        wait_accepted(stack, f.pro, f.pro_key)
        yield f
    finally:
        f.gateway.stop()
        worker.stop()


def test_quota_exceeded_is_a_reply_with_retry_after_and_limit(faulty: Faulty) -> None:
    rc, records, _ = run_ask(faulty.stack, faulty.tmp, "chat", faulty.free, faulty.free_key, "hi")
    assert rc == 1
    error = records[-1]["error"]
    assert error["error"] == "quota_exceeded" and error["limit"] == 0 and error["retry_after"] > 0
    (streamed,) = [final(r) for r in _call(faulty, "detect-errors", faulty.free, stream=True)]
    assert streamed.error is not None and streamed.error.error == "quota_exceeded"
    resp = httpx.post(
        f"{faulty.base}/analyze",
        json={"entries": ["ERROR x"]},
        headers={"Authorization": f"Bearer {faulty.free_key}", "X-Tenant": faulty.free},
        timeout=60,
    )
    assert resp.status_code == 429 and int(resp.headers["Retry-After"]) >= 1
    assert resp.json()["limit"] == 0 and resp.json()["code"] == "quota_exceeded"


def test_no_provider_is_a_reply_and_health_says_why(faulty: Faulty) -> None:
    rc, records, _ = run_ask(faulty.stack, faulty.tmp, "chat", faulty.pro, faulty.pro_key, "hi")
    assert rc == 1 and records[-1]["error"]["error"] == "no_provider"
    headers = {"Authorization": f"Bearer {faulty.pro_key}", "X-Tenant": faulty.pro}
    resp = httpx.post(f"{faulty.base}/chat", json={"message": "hi"}, headers=headers, timeout=120)
    assert resp.status_code == 503 and resp.json()["code"] == "no_provider"
    health = httpx.get(f"{faulty.base}/health", headers=headers, timeout=60)
    assert health.status_code == 200
    report = health.json()
    assert not report["ok"] and not report["providers"]["embedded"]["ok"]
    assert report["clickhouse"]["ok"]
    models = httpx.get(f"{faulty.base}/models", headers=headers, timeout=60).json()
    assert models["providers"]["embedded"]["available"] == []
    assert faulty.worker.proc is not None and faulty.worker.proc.poll() is None


def test_tier_change_applies_to_the_next_call(faulty: Faulty) -> None:
    """A tenant added and re-tiered with the CLI while the worker runs."""
    name = f"mover-{uid()}"
    env = cli_env(faulty.stack, faulty.tmp)
    cli = [sys.executable, "-m", "loglytics", "tenants"]
    added = subprocess.run([*cli, "add", name, "--tier", "free"], env=env, capture_output=True)
    assert added.returncode == 0, added.stderr
    key = added.stdout.decode().strip()
    wait_accepted(faulty.stack, name, key)
    assert _error(faulty, name, key) == "quota_exceeded"
    moved = subprocess.run([*cli, "set-tier", name, "pro"], env=env, capture_output=True)
    assert moved.returncode == 0, moved.stderr
    deadline = time.monotonic() + 30
    while (kind := _error(faulty, name, key)) == "quota_exceeded" and time.monotonic() < deadline:
        time.sleep(0.5)
    assert kind == "no_provider"  # past the free quota: the pro tier's providers were tried


def _call(faulty: Faulty, task: str, tenant: str, stream: bool = False) -> list[list[Reply]]:
    key = faulty.free_key if tenant == faulty.free else faulty.pro_key
    req = request(tenant, key, task, input={"entries": ["ERROR a"]}, stream=stream)
    return asyncio.run(call_all(faulty.stack, [req]))


def _error(faulty: Faulty, tenant: str, key: str) -> str | None:
    ask = request(tenant, key, "chat", input={"message": "hi"})
    reply = final(asyncio.run(call_all(faulty.stack, [ask]))[0])
    return reply.error.error if reply.error else None
