"""The HTTP API: thin gateways from `/api/v1/llm/...` onto the request topic.

Each call becomes an `LLMRequest` on `llm.requests` and waits for its reply on
`llm.responses`, exactly as `loglytics ask` does, so HTTP and Kafka callers get
the same authentication, quotas and answers. Credentials: `Authorization:
Bearer <api key>` plus the tenant in `X-Tenant` (or a `tenant` body field);
the request agent checks them, the gateway only refuses calls lacking them.

A POST body is the task's input (`{"entries": [...]}`, `{"message": ...}`, or
`{"input": {...}}`); `max_tokens` and `temperature` at its top level are
request options. Errors map to status codes (401 credentials, 400 input,
429 quota with Retry-After, 503 no provider, 504 no reply in time). The stream
route answers NDJSON: one chunk object per line, then the final response.
"""

from __future__ import annotations

import math
from contextlib import aclosing
from typing import Any, ClassVar

import faust
import orjson
from aiohttp import web
from faust.web import View

from loglytics.clients import ReplyTimeout, new_request_id
from loglytics.schemas import DecodeError, LLMRequest, LLMResponse
from loglytics.tasks import REGISTRY
from loglytics.web.gateway import Gateway

API = "/api/v1/llm"
OPTION_KEYS = ("tenant", "max_tokens", "temperature")
REPLY_TIMEOUT = 180.0
MAX_BODY_BYTES = 4 << 20
NDJSON = "application/x-ndjson"

HTTP_STATUS: dict[str, int] = {
    "invalid_credentials": 401,
    "invalid_input": 400,
    "unknown_task": 404,
    "quota_exceeded": 429,
    "invalid_output": 502,
    "no_provider": 503,
    "timeout": 504,
    "internal": 500,
}


class ApiError(Exception):
    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message


def error_response(status: int, error: str, message: str) -> web.Response:
    body = {"ok": False, "error": {"error": error, "message": message}}
    return web.json_response(body, status=status, dumps=lambda v: orjson.dumps(v).decode())


def reply_response(reply: LLMResponse) -> web.Response:
    """The reply as JSON, with the status code its error kind maps to."""
    headers: dict[str, str] = {}
    status = 200
    if reply.error is not None:
        status = HTTP_STATUS.get(reply.error.error, 500)
        if reply.error.retry_after is not None:
            headers["Retry-After"] = str(max(1, math.ceil(reply.error.retry_after)))
    return web.Response(
        body=reply.to_bytes(), status=status, headers=headers, content_type="application/json"
    )


async def read_body(request: web.Request) -> dict[str, Any]:
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise ApiError(413, "invalid_input", f"body larger than {MAX_BODY_BYTES} bytes")
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ApiError(400, "invalid_input", "the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_input", "the body must be a JSON object")
    return body


def build_request(
    request: web.Request, task: str, body: dict[str, Any], *, stream: bool = False
) -> LLMRequest:
    """An `LLMRequest` from the credentials, the body's options and its input."""
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise ApiError(401, "invalid_credentials", "missing 'Authorization: Bearer <api key>'")
    body = dict(body)
    options = {k: body.pop(k) for k in OPTION_KEYS if k in body}
    tenant = request.headers.get("X-Tenant") or options.pop("tenant", None)
    options.pop("tenant", None)
    if not isinstance(tenant, str) or not tenant:
        raise ApiError(401, "invalid_credentials", "missing tenant (X-Tenant header)")
    given = body["input"] if set(body) == {"input"} and isinstance(body["input"], dict) else body
    obj = {
        "request_id": new_request_id(),
        "tenant": tenant,
        "api_key": key.strip(),
        "task": task,
        "input": given,
        "stream": stream,
        **options,
    }
    try:
        return LLMRequest.from_obj(obj)
    except DecodeError as exc:
        raise ApiError(400, "invalid_input", exc.reason) from None


async def call(gateway: Gateway, llm_request: LLMRequest) -> web.Response:
    client = await gateway.client()
    try:
        reply = await client.call(llm_request, REPLY_TIMEOUT)
    except ReplyTimeout as exc:
        return error_response(504, "timeout", str(exc))
    return reply_response(reply)


async def call_streaming(
    gateway: Gateway, request: web.Request, llm_request: LLMRequest
) -> web.StreamResponse:
    """NDJSON: the status is chosen by the first reply (an early error is a plain error)."""
    client = await gateway.client()
    async with aclosing(client.stream(llm_request, REPLY_TIMEOUT)) as replies:
        try:
            first = await anext(replies)
        except ReplyTimeout as exc:
            return error_response(504, "timeout", str(exc))
        if isinstance(first, LLMResponse):
            return reply_response(first)
        response = web.StreamResponse(status=200, headers={"Content-Type": NDJSON})
        await response.prepare(request)
        await response.write(first.to_bytes() + b"\n")
        try:
            async for reply in replies:
                await response.write(reply.to_bytes() + b"\n")
        except ReplyTimeout as exc:
            line = {
                "kind": "response",
                "ok": False,
                "error": {"error": "timeout", "message": str(exc)},
            }
            await response.write(orjson.dumps(line) + b"\n")
        await response.write_eof()
        return response


class TaskView(View):
    """POST /api/v1/llm/<task>."""

    task: ClassVar[str] = ""
    stream: ClassVar[bool] = False
    gateway: ClassVar[Gateway]

    async def post(self, request: web.Request, **kwargs: Any) -> web.StreamResponse:
        try:
            llm_request = build_request(
                request, self.task, await read_body(request), stream=self.stream
            )
        except ApiError as exc:
            return error_response(exc.status, exc.error, exc.message)
        if self.stream:
            return await call_streaming(self.gateway, request, llm_request)
        return await call(self.gateway, llm_request)


class InfoView(View):
    """GET /api/v1/llm/models and /health (no body; the tenant from X-Tenant or ?tenant=)."""

    task: ClassVar[str] = ""
    gateway: ClassVar[Gateway]

    async def get(self, request: web.Request, **kwargs: Any) -> web.StreamResponse:
        body: dict[str, Any] = {}
        if request.query.get("tenant"):
            body["tenant"] = request.query["tenant"]
        try:
            llm_request = build_request(request, self.task, body)
        except ApiError as exc:
            return error_response(exc.status, exc.error, exc.message)
        return await call(self.gateway, llm_request)


def register(app: faust.App, gateway: Gateway) -> None:
    """One view class per route, each bound to the worker's gateway client."""

    def page(path: str, base: type[View], **attrs: Any) -> None:
        name = "Llm" + "".join(part.title() for part in path.replace("/", "-").split("-"))
        app.page(f"{API}/{path}", name=name)(type(name, (base,), {**attrs, "gateway": gateway}))

    for spec in REGISTRY:
        page(spec.name, InfoView if spec.method == "GET" else TaskView, task=spec.name)
        if spec.http_stream:
            page(f"{spec.name}/stream", TaskView, task=spec.name, stream=True)
