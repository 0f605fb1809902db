"""Task name → prompt spec, for the tasks that call an LLM (`models`/`health` do not)."""

from __future__ import annotations

from loglytics.prompts.analyze import ANALYZE
from loglytics.prompts.base import PromptSpec
from loglytics.prompts.chat import CHAT
from loglytics.prompts.detect_anomalies import DETECT_ANOMALIES
from loglytics.prompts.detect_errors import DETECT_ERRORS
from loglytics.prompts.query import QUERY
from loglytics.prompts.root_cause import ROOT_CAUSE
from loglytics.prompts.summarize import SUMMARIZE

PROMPTS: dict[str, PromptSpec] = {
    spec.task: spec
    for spec in (CHAT, ANALYZE, DETECT_ERRORS, ROOT_CAUSE, DETECT_ANOMALIES, QUERY, SUMMARIZE)
}


def prompt_for(task: str) -> PromptSpec:
    """The spec of an LLM task; KeyError for tasks without one."""
    return PROMPTS[task]
