"""The on-demand tasks, each declared once: name, handler, prompt, reply model, HTTP route.

Everything else that lists tasks is derived from `REGISTRY`: the request
agent's dispatch table (`HANDLERS`), the model a reply's `data` validates
against (`DATA_MODELS`), the prompts of the tasks that call an LLM
(`PROMPTS`) and the HTTP API's routes (`web.api`). The wire vocabulary
`schemas.TASKS` sits in a lower layer that cannot import handlers, so
`check_registry` holds the two equal (same names, same order) when the table
is built, and a test holds it too.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from pydantic import BaseModel

from loglytics.prompts.analyze import ANALYZE, Analysis
from loglytics.prompts.base import PromptSpec
from loglytics.prompts.chat import CHAT
from loglytics.prompts.detect_anomalies import DETECT_ANOMALIES, DetectedAnomalies
from loglytics.prompts.detect_errors import DETECT_ERRORS, DetectedErrors
from loglytics.prompts.query import QUERY, QueryAnswer
from loglytics.prompts.root_cause import ROOT_CAUSE, RootCause
from loglytics.prompts.summarize import SUMMARIZE, Summary
from loglytics.schemas.llm import TASKS, Task
from loglytics.tasks.analyze import analyze
from loglytics.tasks.base import TaskContext, TaskResult
from loglytics.tasks.chat import chat
from loglytics.tasks.detect_anomalies import detect_anomalies
from loglytics.tasks.detect_errors import detect_errors
from loglytics.tasks.info import HealthReport, ModelsInfo, health, models
from loglytics.tasks.query import query
from loglytics.tasks.root_cause import root_cause
from loglytics.tasks.summarize import summarize
from loglytics.tasks.usage import UsageReport, usage

Handler = Callable[[TaskContext], Awaitable[TaskResult]]
HttpMethod = Literal["GET", "POST"]


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """One task as every layer above the handlers needs to know it.

    `prompt` is None for tasks answered without an LLM; `output` is None for
    tasks whose reply is text only. A GET task takes no body (its route is
    `/api/v1/llm/<name>`); `http_stream` adds `POST <name>/stream`, answered
    as NDJSON chunks.
    """

    name: Task
    handler: Handler
    prompt: PromptSpec | None
    output: type[BaseModel] | None
    method: HttpMethod = "POST"
    http_stream: bool = False


def check_registry(specs: Sequence[TaskSpec], names: Sequence[str]) -> None:
    """Raise ValueError unless `specs` declare exactly `names`, in order, each prompt its own.

    A prompt's `task` is the label its LLM calls are accounted under, so a
    spec lent to the wrong task would bill one task's tokens to another.
    """
    declared = tuple(spec.name for spec in specs)
    if declared != tuple(names):
        raise ValueError(f"task registry declares {declared}, schemas.TASKS is {tuple(names)}")
    for spec in specs:
        if spec.prompt is not None and spec.prompt.task != spec.name:
            raise ValueError(f"task {spec.name!r} uses the prompt of {spec.prompt.task!r}")


def _checked(specs: tuple[TaskSpec, ...]) -> tuple[TaskSpec, ...]:
    check_registry(specs, TASKS)
    return specs


REGISTRY: tuple[TaskSpec, ...] = _checked(
    (
        TaskSpec("chat", chat, CHAT, None, http_stream=True),
        TaskSpec("analyze", analyze, ANALYZE, Analysis),
        TaskSpec("detect-errors", detect_errors, DETECT_ERRORS, DetectedErrors),
        TaskSpec("root-cause", root_cause, ROOT_CAUSE, RootCause),
        TaskSpec("detect-anomalies", detect_anomalies, DETECT_ANOMALIES, DetectedAnomalies),
        TaskSpec("query", query, QUERY, QueryAnswer),
        TaskSpec("summarize", summarize, SUMMARIZE, Summary),
        TaskSpec("models", models, None, ModelsInfo, method="GET"),
        TaskSpec("health", health, None, HealthReport, method="GET"),
        TaskSpec("usage", usage, None, UsageReport, method="GET"),
    )
)

HANDLERS: Mapping[str, Handler] = MappingProxyType({s.name: s.handler for s in REGISTRY})
"""Task name → handler, in `REGISTRY` order (the order an unknown-task reply lists them)."""

DATA_MODELS: Mapping[str, type[BaseModel] | None] = MappingProxyType(
    {s.name: s.output for s in REGISTRY}
)
"""Task name → the model its reply's `data` validates against (None: text only)."""

PROMPTS: Mapping[str, PromptSpec] = MappingProxyType(
    {s.name: s.prompt for s in REGISTRY if s.prompt is not None}
)
"""Task name → prompt, for the tasks that call an LLM."""
