"""The routes: `/api/v1/llm/<task>` (and `chat/stream`), `/api/v1/users/me`.

Each route validates the brief's body (FastAPI, from `gateway.models`), maps
it onto its task's input, sends one `LLMRequest` and maps the reply back. The
OpenAPI description is generated from these signatures and models; every
route documents the error bodies it can return.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from loglytics.gateway.calls import NDJSON, CallerDep, build_request, call, open_stream
from loglytics.gateway.mapping import (
    analysis_input,
    analysis_response,
    analysis_task,
    chat_input,
    chat_response,
    checked,
    query_input,
)
from loglytics.gateway.models import (
    AnalysisRequest,
    AnalysisResponse,
    AnalysisType,
    ChatRequest,
    ChatResponse,
    EntriesRequest,
    ErrorBody,
    QueryRequest,
    RootCauseRequest,
    SummarizeRequest,
)
from loglytics.tasks.info import HealthReport, ModelsInfo
from loglytics.tasks.usage import UsageReport

API = "/api/v1/llm"


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The error responses a route documents (all share `ErrorBody`)."""
    what = {
        400: "the body is not JSON, or the task refused its input",
        401: "missing or invalid API key (or X-Tenant not the key's tenant)",
        404: "no such finding or task",
        413: "the body is larger than 4 MiB",
        422: "a field failed validation (named in `field`)",
        429: "rate limit or quota reached (`retry_after`, `limit`; Retry-After header)",
        500: "internal error",
        502: "the model's answer did not validate",
        503: "no provider of the tier is available (Retry-After header)",
        504: "no reply in time",
    }
    return {s: {"model": ErrorBody, "description": what[s]} for s in statuses}


GET_ERRORS = errors(401, 422, 429, 500, 503, 504)
POST_ERRORS = errors(400, 401, 404, 413, 422, 429, 500, 502, 503, 504)
router = APIRouter()


@router.post(f"{API}/chat", response_model=ChatResponse, responses=POST_ERRORS, tags=["llm"])
async def chat(body: ChatRequest, who: CallerDep, request: Request) -> ChatResponse:
    """Chat with the tenant's model: a message, optional context and history."""
    llm = build_request(
        who, "chat", chat_input(body), max_tokens=body.max_tokens, temperature=body.temperature
    )
    return chat_response(await call(request, llm))


@router.post(
    f"{API}/chat/stream",
    responses={
        200: {
            "description": "NDJSON: `StreamChunk` lines as text is generated, then one line "
            'with `"kind": "response"` and the whole ChatResponse (or `"kind": "error"` '
            "and an ErrorBody)",
            "content": {NDJSON: {"schema": {"type": "string"}}},
        },
        **POST_ERRORS,
    },
    response_class=StreamingResponse,
    tags=["llm"],
)
async def chat_stream(body: ChatRequest, who: CallerDep, request: Request) -> StreamingResponse:
    """Chat, streamed as newline-delimited JSON (`application/x-ndjson`)."""
    llm = build_request(
        who,
        "chat",
        chat_input(body),
        stream=True,
        max_tokens=body.max_tokens,
        temperature=body.temperature,
    )
    return StreamingResponse(await open_stream(request, llm), media_type=NDJSON)


async def analysis(
    route: AnalysisType, body: AnalysisRequest, who: CallerDep, request: Request
) -> AnalysisResponse:
    task, given = analysis_input(analysis_task(route, body), body)
    llm = build_request(who, task, given, max_tokens=body.max_tokens, temperature=body.temperature)
    return analysis_response(await call(request, llm), body.structured_output)


@router.post(f"{API}/analyze", response_model=AnalysisResponse, responses=POST_ERRORS, tags=["llm"])
async def analyze(body: EntriesRequest, who: CallerDep, request: Request) -> AnalysisResponse:
    """Summary, issues and recommendations for log entries (or the `analysis_type` given)."""
    return await analysis(AnalysisType.general, body, who, request)


@router.post(
    f"{API}/detect-errors", response_model=AnalysisResponse, responses=POST_ERRORS, tags=["llm"]
)
async def detect_errors(body: EntriesRequest, who: CallerDep, request: Request) -> AnalysisResponse:
    """The errors in log entries, with severity and likely cause."""
    return await analysis(AnalysisType.error_detection, body, who, request)


@router.post(
    f"{API}/root-cause", response_model=AnalysisResponse, responses=POST_ERRORS, tags=["llm"]
)
async def root_cause(body: RootCauseRequest, who: CallerDep, request: Request) -> AnalysisResponse:
    """The most likely root cause of log entries, or of a stored finding (`finding_id`)."""
    return await analysis(AnalysisType.root_cause, body, who, request)


@router.post(
    f"{API}/detect-anomalies", response_model=AnalysisResponse, responses=POST_ERRORS, tags=["llm"]
)
async def detect_anomalies(
    body: EntriesRequest, who: CallerDep, request: Request
) -> AnalysisResponse:
    """What in log entries deviates from normal behaviour."""
    return await analysis(AnalysisType.anomaly_detection, body, who, request)


@router.post(
    f"{API}/summarize", response_model=AnalysisResponse, responses=POST_ERRORS, tags=["llm"]
)
async def summarize(body: SummarizeRequest, who: CallerDep, request: Request) -> AnalysisResponse:
    """Key figures of a time range of the tenant's data, or a summary of given entries."""
    return await analysis(AnalysisType.summarization, body, who, request)


@router.post(f"{API}/query", response_model=AnalysisResponse, responses=POST_ERRORS, tags=["llm"])
async def query(body: QueryRequest, who: CallerDep, request: Request) -> AnalysisResponse:
    """A question about the tenant's stored data, answered from ClickHouse rows."""
    llm = build_request(
        who, "query", query_input(body), max_tokens=body.max_tokens, temperature=body.temperature
    )
    return analysis_response(await call(request, llm))


async def info(task: str, who: CallerDep, request: Request) -> dict[str, Any]:
    reply = checked(await call(request, build_request(who, task, {})))
    return reply.data or {}


@router.get(f"{API}/models", response_model=ModelsInfo, responses=GET_ERRORS, tags=["info"])
async def models(who: CallerDep, request: Request) -> dict[str, Any]:
    """The providers of the caller's tier, in fallback order, with their models."""
    return await info("models", who, request)


@router.get(f"{API}/health", response_model=HealthReport, responses=GET_ERRORS, tags=["info"])
async def health(who: CallerDep, request: Request) -> dict[str, Any]:
    """Providers, tiers and ClickHouse as a worker sees them."""
    return await info("health", who, request)


@router.get("/api/v1/users/me", response_model=UsageReport, responses=GET_ERRORS, tags=["info"])
async def users_me(who: CallerDep, request: Request) -> dict[str, Any]:
    """The caller's tenant and tier, each counter with its limit and reset, from the ledger."""
    return await info("usage", who, request)
