"""Helpers for the request/reply tests (no tests here): tenants, `ask` runs, direct calls.

Every module starts its own worker (module-scoped fixture) on the session's
stack, with its own tenants, so modules do not depend on each other.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, TypedDict

import orjson

from loglytics.clients import Reply, RequestClient, new_request_id
from loglytics.commands.tenants import add as add_tenant_record
from loglytics.embedded.stack import StackState
from loglytics.kafka_clients import KafkaConnection
from loglytics.schemas import LLMRequest, LLMResponse
from loglytics.tasks import DATA_MODELS

REPLY_TIMEOUT = 240.0


class WorkerEnv(TypedDict):
    """Extra settings for `WorkerProcess(**env)`; keys are its `**env` names, not `app_id`."""

    llm_timeout_seconds: float


# The embedded model on two shared cores can be slow while other suites run: be patient.
WORKER_ENV: WorkerEnv = {"llm_timeout_seconds": 150}
# Small, but room for each task's compact JSON reply.
MAX_TOKENS = 144


def uid() -> str:
    return uuid.uuid4().hex[:8]


def add_tenant(stack: StackState, name: str, tier: str = "free") -> str:
    """Register a tenant through the same code as `loglytics tenants add`; returns its key."""
    return asyncio.run(add_tenant_record(KafkaConnection(stack.kafka), 4, name, tier))


def cli_env(stack: StackState, tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "LLAMACPP_"))}
    env.update({"KAFKA_BOOTSTRAP_SERVERS": stack.kafka, "STATE_DIR": str(tmp / "cli-state")})
    return env


def start_ask(
    stack: StackState, tmp: Path, task: str, tenant: str, key: str, *args: str
) -> subprocess.Popen[bytes]:
    """`loglytics ask TASK ... --json` as a subprocess (started, not awaited)."""
    cmd = [sys.executable, "-m", "loglytics", "ask", task, "--tenant", tenant, "--api-key", key]
    cmd += ["--json", "--timeout", str(REPLY_TIMEOUT), *args]
    return subprocess.Popen(
        cmd, env=cli_env(stack, tmp), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def finish_ask(proc: subprocess.Popen[bytes]) -> tuple[int, list[dict[str, Any]], str]:
    """(exit status, every reply record printed, stderr)."""
    out, err = proc.communicate(timeout=REPLY_TIMEOUT + 30)
    records = [orjson.loads(line) for line in out.splitlines() if line.strip()]
    return proc.returncode, records, err.decode(errors="replace")


def run_ask(
    stack: StackState, tmp: Path, task: str, tenant: str, key: str, *args: str
) -> tuple[int, list[dict[str, Any]], str]:
    return finish_ask(start_ask(stack, tmp, task, tenant, key, *args))


def request(tenant: str, key: str, task: str, **fields: Any) -> LLMRequest:
    return LLMRequest(request_id=new_request_id(), tenant=tenant, api_key=key, task=task, **fields)


async def call_all(stack: StackState, requests: list[LLMRequest]) -> list[list[Reply]]:
    """Send requests concurrently on one client; every reply record of each, in order."""
    async with RequestClient(KafkaConnection(stack.kafka)) as client:

        async def one(req: LLMRequest) -> list[Reply]:
            return [r async for r in client.stream(req, REPLY_TIMEOUT)]

        return list(await asyncio.gather(*(one(r) for r in requests)))


def final(replies: list[Reply]) -> LLMResponse:
    last = replies[-1]
    assert isinstance(last, LLMResponse), last
    return last


def check_ok(task: str, reply: dict[str, Any]) -> None:
    """A successful reply whose `data` validates against the task's schema."""
    assert reply["ok"], reply.get("error")
    assert reply["error"] is None
    model = DATA_MODELS[task]
    if model is None:
        assert reply["text"].strip(), reply
    else:
        assert reply["data"] is not None, reply
        model.model_validate(reply["data"])


def wait_accepted(stack: StackState, tenant: str, key: str, timeout: float = 30.0) -> None:
    """Until the worker's tenant table knows the tenant (a `models` call is accepted)."""
    deadline = time.monotonic() + timeout
    while True:
        reply = final(asyncio.run(call_all(stack, [request(tenant, key, "models")]))[0])
        if reply.ok or time.monotonic() > deadline:
            assert reply.ok, reply.error
            return
        time.sleep(0.5)
