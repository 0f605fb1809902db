"""Prompts, one module per task: system prompt, few-shot examples and output schema."""

from loglytics.prompts.base import FewShot, Message, PromptSpec

__all__ = ["FewShot", "Message", "PromptSpec"]
