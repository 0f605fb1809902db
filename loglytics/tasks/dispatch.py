"""Task name → handler, and the model each task's reply `data` validates against."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from pydantic import BaseModel

from loglytics.prompts.analyze import Analysis
from loglytics.prompts.detect_anomalies import DetectedAnomalies
from loglytics.prompts.detect_errors import DetectedErrors
from loglytics.prompts.query import QueryAnswer
from loglytics.prompts.root_cause import RootCause
from loglytics.prompts.summarize import Summary
from loglytics.tasks.analyze import analyze
from loglytics.tasks.base import TaskContext, TaskResult
from loglytics.tasks.chat import chat
from loglytics.tasks.detect_anomalies import detect_anomalies
from loglytics.tasks.detect_errors import detect_errors
from loglytics.tasks.info import HealthReport, ModelsInfo, health, models
from loglytics.tasks.query import query
from loglytics.tasks.root_cause import root_cause
from loglytics.tasks.summarize import summarize

Handler = Callable[[TaskContext], Awaitable[TaskResult]]

HANDLERS: dict[str, Handler] = {
    "chat": chat,
    "analyze": analyze,
    "detect-errors": detect_errors,
    "root-cause": root_cause,
    "detect-anomalies": detect_anomalies,
    "query": query,
    "summarize": summarize,
    "models": models,
    "health": health,
}

DATA_MODELS: dict[str, type[BaseModel] | None] = {
    "chat": None,
    "analyze": Analysis,
    "detect-errors": DetectedErrors,
    "root-cause": RootCause,
    "detect-anomalies": DetectedAnomalies,
    "query": QueryAnswer,
    "summarize": Summary,
    "models": ModelsInfo,
    "health": HealthReport,
}

LLM_TASKS = frozenset(t for t in HANDLERS if t not in ("models", "health"))
