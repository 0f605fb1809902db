"""From the brief's bodies to `LLMRequest` task inputs, and from replies to the brief's.

The task inputs are the topic protocol's (`tasks/*`): the gateway only picks
the fields out of the brief's shape, so a request through HTTP and one
produced straight to `llm.requests` are served by the same code.
"""

from __future__ import annotations

from typing import Any

from loglytics.gateway.errors import ApiError
from loglytics.gateway.models import (
    AnalysisRequest,
    AnalysisResponse,
    AnalysisType,
    ChatRequest,
    ChatResponse,
    QueryRequest,
    ResponseMetadata,
    RootCauseRequest,
    SummarizeRequest,
)
from loglytics.schemas import LLMResponse

TASK_OF: dict[AnalysisType, str] = {
    AnalysisType.general: "analyze",
    AnalysisType.error_detection: "detect-errors",
    AnalysisType.root_cause: "root-cause",
    AnalysisType.anomaly_detection: "detect-anomalies",
    AnalysisType.summarization: "summarize",
}
SUMMARIZE_ENTRIES_PROMPT = "Summarise these log entries: what happened, and what matters most."


def chat_input(body: ChatRequest) -> dict[str, Any]:
    given: dict[str, Any] = {"message": body.message}
    if body.context:
        given["context"] = body.context
    if body.conversation_history:
        given["history"] = [turn.model_dump() for turn in body.conversation_history]
    return given


def entries_input(body: AnalysisRequest) -> dict[str, Any]:
    """`entries` (each entry with its extra fields), `text` and `prompt` as given."""
    given: dict[str, Any] = {}
    if body.log_entries:
        given["entries"] = [
            e if isinstance(e, str) else e.model_dump(exclude_none=True) for e in body.log_entries
        ]
    if body.text:
        given["text"] = body.text
    if body.prompt:
        given["prompt"] = body.prompt
    return given


def analysis_task(route: AnalysisType, body: AnalysisRequest) -> str:
    """The task to run: `/analyze` runs the type it is given, other routes their own."""
    chosen = body.analysis_type or route
    if route is AnalysisType.general:
        return TASK_OF[chosen]
    if chosen is not route:
        raise ApiError(
            "invalid_input",
            f"analysis_type: this route runs {route.value}, not {chosen.value}",
            status=422,
            field="analysis_type",
        )
    return TASK_OF[route]


def analysis_input(task: str, body: AnalysisRequest) -> tuple[str, dict[str, Any]]:
    """(task, input) for any analysis body; summaries of given entries run as `analyze`."""
    if task == "summarize":
        assert isinstance(body, SummarizeRequest | AnalysisRequest)
        if body.has_entries():
            given = entries_input(body)
            given.setdefault("prompt", SUMMARIZE_ENTRIES_PROMPT)
            return "analyze", given
        return task, body.given() if isinstance(body, SummarizeRequest) else {}
    if task == "root-cause":
        given = entries_input(body)
        if isinstance(body, RootCauseRequest) and body.finding_id is not None:
            given["finding_id"] = body.finding_id
        return task, given
    if not body.has_entries():
        raise ApiError(
            "invalid_input",
            "log_entries: give at least one entry (or text)",
            status=422,
            field="log_entries",
        )
    return task, entries_input(body)


def query_input(body: QueryRequest) -> dict[str, Any]:
    return {"question": body.question, **body.given()}


def metadata(reply: LLMResponse) -> ResponseMetadata:
    usage = reply.tokens_used
    return ResponseMetadata(
        request_id=reply.request_id,
        task=reply.task,
        tenant=reply.tenant,
        provider=reply.provider,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        tokens_estimated=usage.estimated,
        cached=reply.cached,
        truncated=reply.truncated,
    )


def checked(reply: LLMResponse) -> LLMResponse:
    """The reply if it is an answer; its error as an `ApiError` otherwise."""
    if reply.error is not None:
        raise ApiError.from_info(reply.error)
    if not reply.ok:
        raise ApiError("internal", "the worker answered without a result")
    return reply


def confidence(reply: LLMResponse) -> float | None:
    score = reply.confidence_score
    return None if score is None else max(0.0, min(1.0, score))


def chat_response(reply: LLMResponse) -> ChatResponse:
    checked(reply)
    return ChatResponse(
        message=reply.text,
        model_used=reply.model_used,
        tokens_used=reply.tokens_used.total,
        latency_ms=reply.latency_ms,
        confidence_score=confidence(reply),
        metadata=metadata(reply),
        structured_data=None,
    )


def analysis_response(reply: LLMResponse, structured: bool = True) -> AnalysisResponse:
    checked(reply)
    return AnalysisResponse(
        analysis=reply.text,
        model_used=reply.model_used,
        tokens_used=reply.tokens_used.total,
        latency_ms=reply.latency_ms,
        confidence_score=confidence(reply),
        metadata=metadata(reply),
        structured_data=reply.data if structured else None,
    )
