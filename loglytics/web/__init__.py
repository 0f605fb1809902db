"""The worker's HTTP surface: the LLM API gateway and `/metrics`; importing registers both."""

from loglytics.web import api, metrics

__all__ = ["api", "metrics"]
