"""The body guard: size, JSON and nesting checked before any route or model sees a body.

Why in front of FastAPI: its stdlib parser accepts NaN and Infinity and
recurses as deep as Python allows, and a body nested past what orjson can
write back fails only when the request is produced. Here a body is read up to
`MAX_BODY_BYTES` (413 beyond), parsed by orjson (strict JSON, UTF-8 only: 400
otherwise) and refused when nested deeper than `MAX_BODY_DEPTH` (422, naming
the top-level field that holds the nesting). What passes is handed on as read.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from loglytics.gateway.errors import ApiError
from loglytics.schemas.llm import MAX_INPUT_DEPTH, json_depth

MAX_BODY_BYTES = 4 << 20
MAX_BODY_DEPTH = MAX_INPUT_DEPTH
"""A body object is (at most) one task input, so it may nest as deep as an input."""


def check_body(raw: bytes) -> None:
    """Raise `ApiError` unless `raw` is empty or JSON within the depth limit."""
    if not raw.strip():
        return
    try:
        body: Any = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        reason = str(exc).split(":")[0]
        raise ApiError(
            "invalid_input", f"the body is not valid JSON ({reason})", field="body"
        ) from None
    if json_depth(body) <= MAX_BODY_DEPTH:
        return
    field = "body"
    if isinstance(body, dict):
        field = next((k for k, v in body.items() if json_depth(v) >= MAX_BODY_DEPTH), "body")
    raise ApiError(
        "invalid_input",
        f"{field}: nested deeper than {MAX_BODY_DEPTH} levels",
        status=422,
        field=field,
    )


class BodyGuard:
    """ASGI middleware applying `check_body` to every request that has a body."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        try:
            if declared is not None and int(declared) > self.max_bytes:
                raise self._too_large()
            raw = await self._read(receive)
            check_body(raw)
        except ApiError as exc:
            await exc.response()(scope, receive, send)
            return
        except ValueError:  # a content-length that is not a number
            await ApiError("invalid_input", "bad Content-Length").response()(scope, receive, send)
            return
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": raw, "more_body": False}

        await self.app(scope, replay, send)

    async def _read(self, receive: Receive) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                raise self._too_large()
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    def _too_large(self) -> ApiError:
        return ApiError(
            "payload_too_large", f"the body is larger than {self.max_bytes} bytes", status=413
        )
