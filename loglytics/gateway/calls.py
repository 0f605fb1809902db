"""One call through the backend: the caller's credentials, the request, the reply or stream.

Authentication here is the bearer key alone: its hash finds the tenant (an
`X-Tenant` header, when sent, must name the same one). Every refusal reads the
same, so a caller learns nothing about which tenants exist. The worker checks
the key again against the tenant and admits the request against its quotas
and rate window: the gateway keeps no counter of its own.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from loglytics.clients import ReplyTimeout, new_request_id
from loglytics.gateway.backend import Backend
from loglytics.gateway.errors import ApiError
from loglytics.gateway.mapping import chat_response, checked
from loglytics.gateway.models import StreamChunk
from loglytics.schemas import DecodeError, LLMRequest, LLMResponse
from loglytics.schemas.llm import MAX_INPUT_DEPTH, json_depth, unwritable

NDJSON = "application/x-ndjson"
DENIED = "invalid API key"

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="BearerKey",
    description="`Authorization: Bearer <api key>`; the key identifies its tenant.",
)


@dataclass(frozen=True)
class Caller:
    tenant: str
    api_key: str


def backend_of(request: Request) -> Backend:
    backend: Backend = request.app.state.backend
    return backend


def timeout_of(request: Request) -> float:
    seconds: float = request.app.state.reply_timeout
    return seconds


def caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    x_tenant: Annotated[
        str | None,
        Header(description="optional; must name the key's tenant", max_length=64),
    ] = None,
) -> Caller:
    key = credentials.credentials.strip() if credentials is not None else ""
    if not key:
        raise ApiError("invalid_credentials", "missing 'Authorization: Bearer <api key>'")
    record = backend_of(request).tenant_for(key)
    if record is None or (x_tenant is not None and x_tenant != record.tenant):
        raise ApiError("invalid_credentials", DENIED)
    return Caller(record.tenant, key)


CallerDep = Annotated[Caller, Depends(caller)]


def build_request(
    who: Caller, task: str, given: dict[str, Any], *, stream: bool = False, **options: Any
) -> LLMRequest:
    obj = {
        "request_id": new_request_id(),
        "tenant": who.tenant,
        "api_key": who.api_key,
        "task": task,
        "input": given,
        "stream": stream,
        **{k: v for k, v in options.items() if v is not None},
    }
    try:
        return LLMRequest.from_obj(obj)
    except DecodeError as exc:  # an input orjson cannot write: name the field holding it
        held = (k for k, v in given.items() if unwritable(v) or json_depth(v) >= MAX_INPUT_DEPTH)
        field = next(held, exc.reason.split(":")[0])
        raise ApiError("invalid_input", exc.reason, status=422, field=field) from None


async def call(request: Request, llm_request: LLMRequest) -> LLMResponse:
    """Send the request and wait for its final reply (chunks, if any, are dropped)."""
    stream = backend_of(request).stream(llm_request, timeout_of(request))
    async with aclosing(stream) as replies:
        try:
            async for reply in replies:
                if isinstance(reply, LLMResponse):
                    return reply
        except ReplyTimeout as exc:
            raise ApiError("timeout", str(exc)) from None
    raise ApiError("timeout", f"no reply to {llm_request.request_id}")


async def open_stream(request: Request, llm_request: LLMRequest) -> AsyncIterator[bytes]:
    """NDJSON lines; the first reply is awaited here, so an early error is a plain error."""
    replies = backend_of(request).stream(llm_request, timeout_of(request))
    try:
        first = await anext(replies)
    except ReplyTimeout as exc:
        await replies.aclose()
        raise ApiError("timeout", str(exc)) from None
    if isinstance(first, LLMResponse):
        await replies.aclose()
        checked(first)  # an error before any text: its own status, not a 200 stream
        return _lines([_final_line(first)])
    return _rest(first, replies)


async def _lines(lines: list[bytes]) -> AsyncIterator[bytes]:
    for line in lines:
        yield line


async def _rest(first: Any, replies: AsyncGenerator[Any, None]) -> AsyncIterator[bytes]:
    async with aclosing(replies):
        yield StreamChunk(seq=first.seq, delta=first.delta).model_dump_json().encode() + b"\n"
        try:
            async for reply in replies:
                if isinstance(reply, LLMResponse):
                    yield _final_line(reply)
                    return
                yield (
                    StreamChunk(seq=reply.seq, delta=reply.delta).model_dump_json().encode() + b"\n"
                )
        except ReplyTimeout as exc:
            body = ApiError("timeout", str(exc)).body().model_dump()
            yield orjson.dumps({"kind": "error", **body}) + b"\n"


def _final_line(reply: LLMResponse) -> bytes:
    """The stream's last line: the whole ChatResponse, or the error that ended it."""
    try:
        response = chat_response(reply)
    except ApiError as exc:
        return orjson.dumps({"kind": "error", **exc.body().model_dump()}) + b"\n"
    return orjson.dumps({"kind": "response", **response.model_dump(mode="json")}) + b"\n"
