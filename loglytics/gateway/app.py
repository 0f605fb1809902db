"""The FastAPI app: routes, the body guard, error handlers, offline Swagger UI and ReDoc.

Why the docs are served by hand: FastAPI's own `/docs` and `/redoc` load their
scripts from a CDN; these pages load the same assets from the
`fastapi-offline` package, mounted at `/static-offline-docs`, so the docs
work on a host with no internet.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response

from loglytics.gateway.backend import Backend
from loglytics.gateway.body import MAX_BODY_BYTES, BodyGuard
from loglytics.gateway.errors import ApiError, on_api_error, on_http_error, on_validation_error
from loglytics.gateway.incidents import IncidentDesk
from loglytics.gateway.incidents import router as incidents_router
from loglytics.gateway.routes import router

log = logging.getLogger(__name__)

STATIC = "/static-offline-docs"
READY_MARK = "Gateway ready"
DESCRIPTION = f"""The loglytics HTTP API: on-demand LLM analysis of logs, per tenant.

Authenticate with `Authorization: Bearer <api key>`; the key identifies the
tenant (an `X-Tenant` header is optional and must agree). Every error body is
`{{"error", "code", "retry_after", "limit", "field"}}`; 429 and 503 carry a
`Retry-After` header. Bodies are JSON up to {MAX_BODY_BYTES // (1 << 20)} MiB,
nested at most 32 deep. Requests are rate limited per tenant over a sliding
window (`RATE_LIMIT_REQUESTS` per `RATE_LIMIT_WINDOW` seconds), next to the
tier's calls per day and tokens per month; `GET /api/v1/users/me` shows all
three.
"""


def static_dir() -> Path:
    return Path(fastapi_offline.__file__).parent / "static"


async def on_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s", request.url.path, exc_info=exc)
    return ApiError("internal", "internal error").response()


def build_app(
    backend: Backend, *, reply_timeout: float = 180.0, incidents: IncidentDesk | None = None
) -> FastAPI:
    """The app over `backend`, which it starts and stops with itself; a call with no final
    reply within `reply_timeout` seconds is answered 504. The incidents routes answer from
    `incidents` (started and stopped with the app too), or 404 without one."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await backend.start()
        if incidents is not None:
            await incidents.start()
        log.info(READY_MARK)
        try:
            yield
        finally:
            if incidents is not None:
                await incidents.stop()
            await backend.stop()

    app = FastAPI(
        title="loglytics API",
        version="1.0.0",
        description=DESCRIPTION,
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.backend = backend
    app.state.reply_timeout = reply_timeout
    app.state.incidents = incidents
    app.include_router(router)
    app.include_router(incidents_router)
    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected)
    app.add_middleware(BodyGuard)
    app.mount(STATIC, StaticFiles(directory=static_dir()), name="static-offline-docs")

    @app.get("/docs", include_in_schema=False)
    async def swagger() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="loglytics API - Swagger UI",
            swagger_js_url=f"{STATIC}/swagger-ui-bundle.js",
            swagger_css_url=f"{STATIC}/swagger-ui.css",
            swagger_favicon_url=f"{STATIC}/favicon.png",
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url="/openapi.json",
            title="loglytics API - ReDoc",
            redoc_js_url=f"{STATIC}/redoc.standalone.js",
            redoc_favicon_url=f"{STATIC}/favicon.png",
            with_google_fonts=False,
        )

    return app
