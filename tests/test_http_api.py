"""Integration: the HTTP API on a real worker — every task, streaming, errors, /metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
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

from loglytics.embedded.stack import StackState

ENTRIES = [
    *["2024-06-02 08:30:11 ERROR auth: token validation failed for client web-7"] * 4,
    "2024-06-02 08:30:12 WARN auth: clock skew of 41s detected",
    "2024-06-02 08:30:13 INFO auth: login ok user=42",
]


class Api:
    def __init__(self, worker: WorkerProcess, tenant: str, key: str) -> None:
        self.base = f"http://127.0.0.1:{worker.web_port}"
        self.worker, self.tenant, self.key = worker, tenant, key

    def headers(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.key}", "X-Tenant": self.tenant}


@pytest.fixture(scope="module")
def api(stack: StackState, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    tmp = tmp_path_factory.mktemp("http-api")
    tenant = f"http-{uid()}"
    key = add_tenant(stack, tenant)
    worker = WorkerProcess(stack, tmp, **WORKER_ENV)
    worker.start()
    try:
        wait_accepted(stack, tenant, key)
        yield Api(worker, tenant, key)
    finally:
        worker.stop()


async def test_every_task_answers_over_http(api: Api) -> None:
    posts: dict[str, dict[str, Any]] = {
        "chat": {"message": "How do I read a stack trace?", "max_tokens": 48},
        "analyze": {"entries": ENTRIES, "max_tokens": MAX_TOKENS},
        "detect-errors": {"entries": ENTRIES, "max_tokens": MAX_TOKENS},
        "detect-anomalies": {"input": {"text": "\n".join(ENTRIES)}, "max_tokens": MAX_TOKENS},
        "root-cause": {"entries": ENTRIES, "max_tokens": MAX_TOKENS},
        "query": {"question": "Which findings are critical?"},
        "summarize": {"last_hours": 6},
    }
    async with httpx.AsyncClient(base_url=api.base, timeout=REPLY_TIMEOUT) as http:
        calls = [
            http.post(f"/api/v1/llm/{t}", json=b, headers=api.headers()) for t, b in posts.items()
        ]
        calls += [http.get(f"/api/v1/llm/{t}", headers=api.headers()) for t in ("models", "health")]
        answers = await asyncio.gather(*calls)
    for task, answer in zip([*posts, "models", "health"], answers, strict=True):
        assert answer.status_code == 200, (task, answer.text)
        body = answer.json()
        assert body["task"] == task and body["tenant"] == api.tenant
        check_ok(task, body)
    health = answers[-1].json()["data"]
    assert health["clickhouse"]["ok"] and health["providers"]["embedded"]["ok"]


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
    assert last["kind"] == "response" and last["ok"], last
    assert chunks and [c["seq"] for c in chunks] == list(range(len(chunks)))
    assert "".join(c["delta"] for c in chunks) == last["text"]


def test_http_errors_have_status_codes(api: Api) -> None:
    with httpx.Client(base_url=api.base, timeout=60) as http:
        chat = "/api/v1/llm/chat"
        assert http.post(chat, json={"message": "hi"}).status_code == 401  # no credentials
        wrong = http.post(chat, json={"message": "hi"}, headers=api.headers("llk_nope"))
        assert wrong.status_code == 401
        assert wrong.json()["error"]["error"] == "invalid_credentials"
        no_tenant = http.post(chat, json={"message": "hi"}, headers={"Authorization": "Bearer x"})
        assert no_tenant.status_code == 401
        bad_json = http.post(chat, content=b"{nope", headers=api.headers())
        assert bad_json.status_code == 400 and bad_json.json()["error"]["error"] == "invalid_input"
        missing = http.post(chat, json={"text": "no message"}, headers=api.headers())
        assert missing.status_code == 400 and missing.json()["error"]["error"] == "invalid_input"
        typed = http.post(chat, json={"message": "hi", "max_tokens": "many"}, headers=api.headers())
        assert typed.status_code == 400
        assert http.get("/api/v1/llm/models", headers=api.headers()).status_code == 200


def test_metrics_endpoint_serves_prometheus_text(api: Api) -> None:
    resp = httpx.get(f"{api.base}/metrics", timeout=30)
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain")
    text = resp.text
    assert "loglytics_requests_total{" in text  # the request agent's counters
    assert "loglytics_llm_calls_total{" in text  # the pool's, on the runtime registry
    assert "python_info{" in text  # the default registry
