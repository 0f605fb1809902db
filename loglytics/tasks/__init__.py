"""On-demand task handlers: one module per task, `dispatch.HANDLERS` maps names to them."""

from loglytics.tasks.base import TaskContext, TaskError, TaskResult
from loglytics.tasks.dispatch import DATA_MODELS, HANDLERS, LLM_TASKS

__all__ = ["DATA_MODELS", "HANDLERS", "LLM_TASKS", "TaskContext", "TaskError", "TaskResult"]
