"""The gateway in process over a stand-in backend: schemas, mapping, errors, docs, limits.

The stand-in answers like a worker (a reply per request, keyed by its id), so
these tests hold the HTTP layer without a broker; tests/test_http_api.py runs
the same routes against a real worker.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import httpx
import orjson
import pytest

from loglytics.clients import Reply
from loglytics.gateway.app import build_app
from loglytics.gateway.body import MAX_BODY_BYTES
from loglytics.schemas import (
    ErrorInfo,
    LLMRequest,
    LLMResponse,
    LLMStreamChunk,
    TenantRecord,
    TokenUsage,
    hash_api_key,
)

KEY = "llk_unit-test-key"
TENANT = "acme"


COUNTER = {"used": 1, "limit": 5, "resets_in_seconds": 3.0, "resets_at": "2026-01-01T00:00:00Z"}
DATA: dict[str, dict[str, Any]] = {
    "models": {"tier": "free", "chain": ["embedded"], "providers": {}},
    "health": {
        "ok": True,
        "tier": "free",
        "providers": {},
        "tiers": {},
        "clickhouse": {"ok": True, "latency_ms": 1.0},
    },
    "usage": {
        "tenant": TENANT,
        "tier": "free",
        "tokens_this_month": COUNTER,
        "api_calls_today": COUNTER,
        "rate_limit": {**COUNTER, "window_seconds": 60.0},
    },
}


class StandIn:
    """A backend that records requests and answers with `reply_for`."""

    def __init__(self) -> None:
        self.sent: list[LLMRequest] = []
        self.error: ErrorInfo | None = None
        self.record = TenantRecord(tenant=TENANT, api_key_hashes=[hash_api_key(KEY)])

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def tenant_for(self, api_key: str) -> TenantRecord | None:
        return self.record if self.record.accepts(api_key) else None

    async def stream(self, request: LLMRequest, timeout: float) -> AsyncGenerator[Reply, None]:
        self.sent.append(request)
        if request.stream and self.error is None:
            for seq, delta in enumerate(("Hello", " there")):
                yield LLMStreamChunk(request_id=request.request_id, seq=seq, delta=delta)
        yield self.reply_for(request)

    def reply_for(self, request: LLMRequest) -> LLMResponse:
        base: dict[str, Any] = {
            "request_id": request.request_id,
            "tenant": request.tenant,
            "task": request.task,
        }
        if self.error is not None:
            return LLMResponse(**base, ok=False, error=self.error)
        data = None if request.task == "chat" else DATA.get(request.task, {"summary": "ok"})
        if request.task == "usage":  # every request counts in the window, as on a worker
            window = {**COUNTER, "used": len(self.sent), "limit": 100, "window_seconds": 60.0}
            data = {**DATA["usage"], "rate_limit": window}
        return LLMResponse(
            **base,
            text="Hello there",
            data=data,
            model_used="tiny",
            provider="embedded",
            tokens_used=TokenUsage(prompt_tokens=7, completion_tokens=5),
            latency_ms=12.5,
            confidence_score=0.8,
        )


@pytest.fixture
def backend() -> StandIn:
    return StandIn()


@pytest.fixture
async def http(backend: StandIn) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build_app(backend))
    headers = {"Authorization": f"Bearer {KEY}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://t", headers=headers) as c:
        yield c


async def test_chat_takes_the_briefs_fields_and_answers_in_them(
    http: httpx.AsyncClient, backend: StandIn
) -> None:
    body = {
        "message": "Why?",
        "context": {"service": "api"},
        "conversation_history": [{"role": "user", "content": "hi"}],
        "max_tokens": 32,
    }
    resp = await http.post("/api/v1/llm/chat", json=body)
    assert resp.status_code == 200, resp.text
    got = resp.json()
    assert got["message"] == "Hello there" and got["tokens_used"] == 12
    assert got["model_used"] == "tiny" and got["structured_data"] is None
    assert got["metadata"]["provider"] == "embedded" and got["metadata"]["prompt_tokens"] == 7
    sent = backend.sent[-1]
    assert sent.tenant == TENANT and sent.task == "chat" and sent.temperature == 0.7
    assert sent.input == {
        "message": "Why?",
        "context": {"service": "api"},
        "history": [{"role": "user", "content": "hi"}],
    }


async def test_analysis_routes_map_entries_prompt_and_type(
    http: httpx.AsyncClient, backend: StandIn
) -> None:
    entry = {"level": "ERROR", "message": "boom", "timestamp": "t", "source": "s", "host": "h"}
    body = {"log_entries": [entry], "prompt": "why?", "analysis_type": "general"}
    resp = await http.post("/api/v1/llm/analyze", json=body)
    assert resp.status_code == 200, resp.text
    assert resp.json()["structured_data"] == {"summary": "ok"}
    assert backend.sent[-1].input == {"entries": [entry], "prompt": "why?"}
    assert backend.sent[-1].temperature == 0.3
    routed = await http.post(
        "/api/v1/llm/analyze", json={"entries": ["x"], "analysis_type": "error_detection"}
    )
    assert routed.status_code == 200 and backend.sent[-1].task == "detect-errors"
    wrong = await http.post(
        "/api/v1/llm/detect-errors", json={"entries": ["x"], "analysis_type": "root_cause"}
    )
    assert wrong.status_code == 422 and wrong.json()["field"] == "analysis_type"
    finding = await http.post("/api/v1/llm/root-cause", json={"finding_id": "f1"})
    assert finding.status_code == 200 and backend.sent[-1].input == {"finding_id": "f1"}
    summary = await http.post("/api/v1/llm/summarize", json={"last_hours": 6})
    assert summary.status_code == 200 and backend.sent[-1].input == {"last_hours": 6}
    query = await http.post("/api/v1/llm/query", json={"question": "q?", "last_hours": 2})
    assert query.status_code == 200
    assert backend.sent[-1].input == {"question": "q?", "last_hours": 2}


async def test_bearer_alone_authenticates_and_x_tenant_must_agree(
    http: httpx.AsyncClient, backend: StandIn
) -> None:
    ok = await http.get("/api/v1/users/me")
    assert ok.status_code == 200 and backend.sent[-1].task == "usage"
    agree = await http.get("/api/v1/llm/models", headers={"X-Tenant": TENANT})
    assert agree.status_code == 200
    bodies = []
    for headers in (
        {"X-Tenant": "other"},
        {"Authorization": "Bearer llk_wrong"},
        {"Authorization": "Bearer llk_wrong", "X-Tenant": TENANT},
        {"Authorization": ""},
    ):
        resp = await http.post("/api/v1/llm/chat", json={"message": "hi"}, headers=headers)
        assert resp.status_code == 401, headers
        bodies.append(resp.json())
    assert all(b["code"] == "invalid_credentials" for b in bodies)
    assert len({b["error"] for b in bodies[:3]}) == 1  # nothing tells the cases apart


@pytest.mark.parametrize(
    ("kind", "status", "retry"),
    [
        ("rate_limited", 429, "300"),
        ("quota_exceeded", 429, "300"),
        ("no_provider", 503, "10"),
        ("invalid_input", 400, None),
    ],
)
async def test_worker_errors_have_the_briefs_shape_and_status(
    http: httpx.AsyncClient, backend: StandIn, kind: str, status: int, retry: str | None
) -> None:
    after = 299.2 if status == 429 else None
    backend.error = ErrorInfo(error=kind, message="Rate limit exceeded", retry_after=after, limit=5)
    resp = await http.post("/api/v1/llm/chat", json={"message": "hi"})
    assert resp.status_code == status
    assert resp.headers.get("retry-after") == retry
    body = resp.json()
    assert body["code"] == kind and body["limit"] == 5 and body["error"] == "Rate limit exceeded"
    if retry is not None:
        assert body["retry_after"] == int(retry)


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.mark.parametrize(
    ("content", "status", "field"),
    [
        (b"{nope", 400, "body"),
        (b'{"message": "\xff\xfe"}', 400, "body"),
        (b'{"message": "hi", "temperature": NaN}', 400, "body"),
        (b'{"message": "hi", "context": ' + b'{"a": ' * 300 + b"1" + b"}" * 301, 422, "context"),
        (orjson.dumps({"message": "hi", "context": nested(20)}), 200, None),
        (b'{"message": "hi", "max_tokens": 100000000000000000000000}', 422, "max_tokens"),
        (b'{"message": "hi", "temperature": 1e308}', 422, "temperature"),
        (b'{"message": "hi", "context": {"n": [259737645483083343855616]}}', 422, "context"),
        (b'{"message": "hi", "context": {"s": "\\ud94a"}}', 400, "body"),
        (orjson.dumps({"message": "x" * 1_000_000}), 200, None),
        (orjson.dumps({"text": "no message"}), 422, "message"),
        (orjson.dumps({"message": "hi", "max_tokens": "many"}), 422, "max_tokens"),
        (b"[1, 2]", 422, "body"),
    ],
)
async def test_malformed_bodies_are_4xx_naming_the_field(
    http: httpx.AsyncClient, content: bytes, status: int, field: str | None
) -> None:
    headers = {"Content-Type": "application/json"}
    resp = await http.post("/api/v1/llm/chat", content=content, headers=headers)
    assert resp.status_code == status, resp.text
    if field is not None:
        assert resp.json()["code"] == "invalid_input" and resp.json()["field"] == field


async def test_deep_nesting_up_to_the_parsers_limit_is_refused_on_every_route(
    http: httpx.AsyncClient,
) -> None:
    deep = b'{"log_entries": ' + b"[" * 1000 + b"]" * 1000 + b"}"
    for route in ("analyze", "detect-errors", "root-cause", "detect-anomalies", "summarize"):
        resp = await http.post(f"/api/v1/llm/{route}", content=deep)
        assert resp.status_code in (400, 422), (route, resp.text)
        assert resp.json()["code"] == "invalid_input"


@pytest.mark.parametrize(
    ("route", "body", "field"),
    [
        ("summarize", {"since": "0904-01-21T02:10:13.179276+12:03"}, "since"),
        ("summarize", {"until": "9999-01-01T00:00:00Z"}, "until"),
        ("query", {"question": "errors?", "since": "1899-12-31T23:59:59Z"}, "since"),
    ],
)
async def test_a_time_clickhouse_cannot_hold_is_a_422_naming_it(
    http: httpx.AsyncClient, route: str, body: dict[str, Any], field: str
) -> None:
    resp = await http.post(f"/api/v1/llm/{route}", json=body)
    assert resp.status_code == 422, resp.text
    assert resp.json()["code"] == "invalid_input" and resp.json()["field"] == field


async def test_a_body_over_the_limit_is_a_json_413(http: httpx.AsyncClient) -> None:
    resp = await http.post("/api/v1/llm/chat", content=b" " * (MAX_BODY_BYTES + 1))
    assert resp.status_code == 413 and resp.json()["code"] == "payload_too_large"


async def test_the_stream_is_ndjson_chunks_then_the_whole_response(
    http: httpx.AsyncClient,
) -> None:
    async with http.stream("POST", "/api/v1/llm/chat/stream", json={"message": "hi"}) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("application/x-ndjson")
        lines = [orjson.loads(line) async for line in resp.aiter_lines() if line.strip()]
    *chunks, last = lines
    assert [c["seq"] for c in chunks] == [0, 1] and last["kind"] == "response"
    assert "".join(c["delta"] for c in chunks) == last["message"]


async def test_openapi_31_documents_every_route_the_bearer_scheme_and_errors(
    http: httpx.AsyncClient,
) -> None:
    spec = (await http.get("/openapi.json")).json()
    assert spec["openapi"].startswith("3.1")
    paths = spec["paths"]
    tasks = ["chat", "chat/stream", "analyze", "detect-errors", "root-cause"]
    tasks += ["detect-anomalies", "summarize", "query", "models", "health"]
    incidents = {"/api/v1/incidents", "/api/v1/mutes", "/api/v1/mutes/{mute_id}"}
    incidents |= {f"/api/v1/incidents/{{incident_id}}/{a}" for a in ("ack", "resolve")}
    assert set(paths) == {f"/api/v1/llm/{t}" for t in tasks} | {"/api/v1/users/me"} | incidents
    assert spec["components"]["securitySchemes"]["BearerKey"]["scheme"] == "bearer"
    schemas = spec["components"]["schemas"]
    for name in ("ChatRequest", "ChatResponse", "AnalysisResponse", "ErrorBody", "LogEntry"):
        assert schemas[name].get("examples") or name.endswith("Response"), name
    assert set(schemas["AnalysisType"]["enum"]) == {
        "general",
        "error_detection",
        "root_cause",
        "anomaly_detection",
        "summarization",
    }
    for path, ops in paths.items():
        for op in ops.values():
            # The incidents routes answer from the gateway's own view: no worker admits them.
            limited = {"401"} if path in incidents else {"401", "429"}
            assert limited <= set(op["responses"]), path
    docs = await http.get("/docs")
    redoc = await http.get("/redoc")
    for page in (docs, redoc):
        assert page.status_code == 200 and "cdn" not in page.text.lower()
    assert (await http.get("/static-offline-docs/swagger-ui-bundle.js")).status_code == 200
    assert (await http.get("/static-offline-docs/redoc.standalone.js")).status_code == 200


async def test_unknown_routes_are_json_errors(http: httpx.AsyncClient) -> None:
    resp = await http.get("/api/v1/llm/nope")
    assert resp.status_code == 404 and resp.json()["code"] == "not_found"
    resp = await http.get("/api/v1/llm/chat")
    assert resp.status_code == 405 and resp.json()["code"] == "method_not_allowed"
