"""The request stage: on-demand tasks from `llm.requests`, answered on `llm.responses`."""

from loglytics.serving.agent import register
from loglytics.serving.service import RequestService

__all__ = ["RequestService", "register"]
