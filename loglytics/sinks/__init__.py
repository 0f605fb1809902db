"""The sink stage: findings and LLM usage from their topics into ClickHouse."""

from loglytics.sinks.agent import register

__all__ = ["register"]
