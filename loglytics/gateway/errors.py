"""Errors as the brief shapes them: `{"error", "code", "retry_after", "limit"}` + a status.

Every refusal the gateway or a worker makes ends here: a worker's `ErrorInfo`
(by its kind), a validation failure (422 naming the field), a body that is not
JSON (400) or too large (413), an unknown route (404). `Retry-After` goes on
every 429 and 503.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import orjson
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from loglytics.gateway.models import ErrorBody
from loglytics.schemas import ErrorInfo

STATUS: dict[str, int] = {
    "invalid_credentials": 401,
    "invalid_input": 400,
    "payload_too_large": 413,
    "not_found": 404,
    "method_not_allowed": 405,
    "unknown_task": 404,
    "rate_limited": 429,
    "quota_exceeded": 429,
    "invalid_output": 502,
    "no_provider": 503,
    "timeout": 504,
    "internal": 500,
}
NO_PROVIDER_RETRY_SECONDS = 10
"""Retry-After on a 503 whose reply named no time (every provider is down)."""


class ApiError(Exception):
    """A refusal with its code; the status follows from the code unless given."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        limit: int | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code if code in STATUS else "internal"
        self.message = message
        self.status = status or STATUS[self.code]
        self.retry_after = retry_after
        self.limit = limit
        self.field = field

    @classmethod
    def from_info(cls, info: ErrorInfo) -> ApiError:
        return cls(info.error, info.message, retry_after=info.retry_after, limit=info.limit)

    def body(self) -> ErrorBody:
        retry = None if self.retry_after is None else max(1, math.ceil(self.retry_after))
        if retry is None and self.status == 503:
            retry = NO_PROVIDER_RETRY_SECONDS
        return ErrorBody.model_validate(
            {
                "error": self.message,
                "code": self.code,
                "retry_after": retry,
                "limit": self.limit,
                "field": self.field,
            }
        )

    def response(self) -> Response:
        body = self.body()
        headers = {}
        if self.status in (429, 503) and body.retry_after is not None:
            headers["Retry-After"] = str(body.retry_after)
        return Response(
            orjson.dumps(body.model_dump()),
            status_code=self.status,
            headers=headers,
            media_type="application/json",
        )


def field_of(loc: Sequence[Any]) -> str:
    """`body.log_entries.0.message` -> `log_entries.0.message` (the body's own path)."""
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "header", "path"):
        parts = parts[1:]
    return ".".join(parts) or "body"


def validation_error(exc: RequestValidationError) -> ApiError:
    first = exc.errors()[0] if exc.errors() else {"loc": ("body",), "msg": "invalid"}
    field = field_of(first.get("loc", ()))
    message = str(first.get("msg", "invalid"))
    if message.startswith("Value error, "):
        message = message.removeprefix("Value error, ")
        if ": " in message:  # a model check names its field first ("log_entries: ...")
            field, _, message = message.partition(": ")
    if first.get("type") == "json_invalid":
        return ApiError("invalid_input", "the body is not valid JSON", field="body")
    return ApiError("invalid_input", f"{field}: {message}", status=422, field=field)


async def on_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return validation_error(exc).response()


async def on_api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return exc.response()


async def on_http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own refusals (unknown route, wrong method) in the same shape."""
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(
        exc.status_code, "invalid_input"
    )
    return ApiError(code, str(exc.detail), status=exc.status_code).response()
