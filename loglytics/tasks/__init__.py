"""On-demand task handlers: one module per task, all declared once in `registry.REGISTRY`."""

from loglytics.tasks.base import TaskContext, TaskError, TaskResult
from loglytics.tasks.registry import DATA_MODELS, HANDLERS, PROMPTS, REGISTRY, Handler, TaskSpec

__all__ = [
    "DATA_MODELS",
    "HANDLERS",
    "PROMPTS",
    "REGISTRY",
    "Handler",
    "TaskContext",
    "TaskError",
    "TaskResult",
    "TaskSpec",
]
