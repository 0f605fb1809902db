"""Integration: the HTTP API gateway (`loglytics api`) on a real worker — every task,
streaming, errors, the brief's curl examples; the worker's `/metrics`."""

from __future__ import annotations

import asyncio
import shlex
import subprocess
import time
from collections.abc import Awaitable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from test_requests_support import (
    MAX_TOKENS,
    REPLY_TIMEOUT,
    WORKER_ENV,
    add_tenant,
    check_ok,
    uid,
    wait_accepted,
)
from worker_proc import WorkerProcess

from loglytics.embedded.gateway import GatewayProcess
from loglytics.embedded.stack import StackState

CURL_DIR = Path(__file__).parent / "data" / "api"
ENTRIES = [
    *["2024-06-02 08:30:11 ERROR auth: token validation failed for client web-7"] * 4,
    "2024-06-02 08:30:12 WARN auth: clock skew of 41s detected",
    "2024-06-02 08:30:13 INFO auth: login ok user=42",
]


class Api:
    def __init__(self, gateway: GatewayProcess, worker: WorkerProcess, tenant: str, key: str):
        self.base = gateway.base
        self.gateway, self.worker, self.tenant, self.key = gateway, worker, tenant, key

    def headers(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.key}"}


def wait_gateway_knows(base: str, key: str, timeout: float = 30.0) -> None:
    """Until the gateway's tenant directory has the new tenant's key."""
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=base, timeout=REPLY_TIMEOUT) as http:
        while True:
            resp = http.get("/api/v1/users/me", headers={"Authorization": f"Bearer {key}"})
            if resp.status_code != 401 or time.monotonic() > deadline:
                assert resp.status_code == 200, resp.text
                return
            time.sleep(0.3)


@pytest.fixture(scope="module")
def api(stack: StackState, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    tmp = tmp_path_factory.mktemp("http-api")
    tenant = f"http-{uid()}"
    key = add_tenant(stack, tenant)
    worker = WorkerProcess(stack, tmp, **WORKER_ENV)
    gateway = GatewayProcess(stack, tmp, api_reply_timeout_seconds=REPLY_TIMEOUT)
    worker.start()
    try:
        gateway.start()
        wait_accepted(stack, tenant, key)
        wait_gateway_knows(gateway.base, key)
        yield Api(gateway, worker, tenant, key)
    finally:
        gateway.stop()
        worker.stop()


async def test_every_task_answers_over_http(api: Api) -> None:
    posts: dict[str, dict[str, Any]] = {
        "chat": {"message": "How do I read a stack trace?", "max_tokens": 48},
        "analyze": {"entries": ENTRIES, "max_tokens": MAX_TOKENS},
        "detect-errors": {"entries": ENTRIES, "max_tokens": MAX_TOKENS},
        "detect-anomalies": {"text": "\n".join(ENTRIES), "max_tokens": MAX_TOKENS},
        "root-cause": {"entries": ENTRIES, "max_tokens": MAX_TOKENS},
        "query": {"question": "Which findings are critical?"},
        "summarize": {"last_hours": 6},
    }
    gets = ["llm/models", "llm/health", "users/me"]
    gate = asyncio.Semaphore(2)  # two model calls at a time: the host's two cores are shared

    async def one(call: Awaitable[httpx.Response]) -> httpx.Response:
        async with gate:
            return await call

    async with httpx.AsyncClient(base_url=api.base, timeout=REPLY_TIMEOUT) as http:
        calls = [
            http.post(f"/api/v1/llm/{t}", json=b, headers=api.headers()) for t, b in posts.items()
        ]
        calls += [http.get(f"/api/v1/{p}", headers=api.headers()) for p in gets]
        answers = await asyncio.gather(*(one(c) for c in calls))
    for task, answer in zip(posts, answers, strict=False):
        assert answer.status_code == 200, (task, answer.text)
        body = answer.json()
        meta = body["metadata"]
        assert meta["task"] == task and meta["tenant"] == api.tenant
        assert isinstance(body["tokens_used"], int)
        text = body["message"] if task == "chat" else body["analysis"]
        check_ok(task, {"ok": True, "error": None, "text": text, "data": body["structured_data"]})
    models, health, me = (a.json() for a in answers[len(posts) :])
    assert all(a.status_code == 200 for a in answers[len(posts) :])
    assert health["clickhouse"]["ok"] and health["providers"]["embedded"]["ok"]
    assert models["tier"] == "free" and me["tenant"] == api.tenant and me["tier"] == "free"
    assert me["api_calls_today"]["used"] >= 1 and me["rate_limit"]["limit"] == 100


def test_chat_stream_is_ndjson_chunks_then_the_response(api: Api) -> None:
    body = {"message": "Name two log levels.", "max_tokens": 40}
    with (
        httpx.Client(base_url=api.base, timeout=REPLY_TIMEOUT) as http,
        http.stream("POST", "/api/v1/llm/chat/stream", json=body, headers=api.headers()) as resp,
    ):
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("application/x-ndjson")
        records = [orjson.loads(line) for line in resp.iter_lines() if line.strip()]
    *chunks, last = records
    assert last["kind"] == "response" and last["message"], last
    assert chunks and [c["seq"] for c in chunks] == list(range(len(chunks)))
    assert "".join(c["delta"] for c in chunks) == last["message"]


def test_http_errors_have_status_codes(api: Api) -> None:
    with httpx.Client(base_url=api.base, timeout=60) as http:
        chat = "/api/v1/llm/chat"
        assert http.post(chat, json={"message": "hi"}).status_code == 401  # no credentials
        wrong = http.post(chat, json={"message": "hi"}, headers=api.headers("llk_nope"))
        assert wrong.status_code == 401
        assert wrong.json()["code"] == "invalid_credentials"
        other = {**api.headers(), "X-Tenant": "someone-else"}
        assert http.post(chat, json={"message": "hi"}, headers=other).status_code == 401
        bad_json = http.post(chat, content=b"{nope", headers=api.headers())
        assert bad_json.status_code == 400 and bad_json.json()["code"] == "invalid_input"
        missing = http.post(chat, json={"text": "no message"}, headers=api.headers())
        assert missing.status_code == 422 and missing.json()["code"] == "invalid_input"
        typed = http.post(chat, json={"message": "hi", "max_tokens": "many"}, headers=api.headers())
        assert typed.status_code == 422 and typed.json()["field"] == "max_tokens"
        gone = http.post(
            "/api/v1/llm/root-cause", json={"finding_id": "no-such-finding"}, headers=api.headers()
        )
        assert gone.status_code == 400 and gone.json()["code"] == "invalid_input", gone.text
        agreed = {**api.headers(), "X-Tenant": api.tenant}
        assert http.get("/api/v1/llm/models", headers=agreed).status_code == 200


def curl_examples() -> list[Path]:
    return sorted(CURL_DIR.glob("*.sh"))


@pytest.mark.parametrize("example", curl_examples(), ids=lambda p: p.stem)
def test_curl_examples_work_unchanged(api: Api, example: Path) -> None:
    """Each example as written (host and token substituted): 200 and the brief's fields."""
    text = example.read_text().strip()
    command = text.replace("$API_URL", api.base).replace("$API_KEY", api.key)
    expected = orjson.loads(example.with_suffix(".fields.json").read_bytes())
    out = subprocess.run(
        ["bash", "-c", command + " --max-time 240 -w '\\n%{http_code}'"],
        capture_output=True,
        text=True,
        timeout=REPLY_TIMEOUT + 30,
    )
    body, _, status = out.stdout.rpartition("\n")
    assert status == "200", (shlex.quote(command), out.stdout[-2000:], out.stderr[-500:])
    if expected.get("ndjson"):
        last = orjson.loads(body.strip().splitlines()[-1])
        assert set(expected["fields"]) <= set(last), last
        return
    got = orjson.loads(body)
    assert set(expected["fields"]) <= set(got), got


def test_metrics_endpoint_serves_prometheus_text(api: Api) -> None:
    resp = httpx.get(f"http://127.0.0.1:{api.worker.web_port}/metrics", timeout=30)
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain")
    text = resp.text
    assert "loglytics_requests_total{" in text  # the request agent's counters
    assert "loglytics_llm_calls_total{" in text  # the pool's, on the runtime registry
    assert "python_info{" in text  # the default registry
    assert httpx.get(f"http://127.0.0.1:{api.worker.web_port}/api/v1/llm/models").status_code == 404
