"""chat: a conversation with optional history and context, answered in free text.

Over-long input is cut to fit the context, never refused: the newest turns are
kept, the context is cut before the question is.
"""

from __future__ import annotations

from typing import Any, Literal

import orjson
from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from loglytics.prompts.base import Message
from loglytics.prompts.chat import CHAT
from loglytics.tasks.base import TaskContext, TaskResult, cut, parse_input


class Turn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["user", "assistant"]
    content: str


class ChatInput(BaseModel):
    """`conversation_history` (the product brief's name) is accepted for `history`; the
    context is text or a JSON object (written into the prompt as compact JSON)."""

    model_config = ConfigDict(extra="forbid")

    message: str = Field(min_length=1)
    history: list[Turn] = Field(
        default_factory=list, validation_alias=AliasChoices("history", "conversation_history")
    )
    context: str | dict[str, Any] | None = None

    def context_text(self) -> str:
        if isinstance(self.context, dict):
            return orjson.dumps(self.context, default=str).decode() if self.context else ""
        return self.context or ""


def fit(given: ChatInput, budget: int) -> tuple[str, list[Message], bool]:
    """(user turn, history, truncated) within `budget` characters."""
    message, cut_message = cut(given.message, max(64, budget // 2))
    room = budget - len(message)
    context, cut_context = cut(given.context_text(), max(0, room // 2))
    room -= len(context)
    history: list[Message] = []
    dropped = False
    for turn in reversed(given.history):
        if len(turn.content) > room:
            dropped = True
            break
        history.insert(0, {"role": turn.role, "content": turn.content})
        room -= len(turn.content)
    user = f"Context:\n{context}\n\nQuestion: {message}" if context else message
    return user, history, cut_message or cut_context or dropped


async def chat(ctx: TaskContext) -> TaskResult:
    given = parse_input(ChatInput, ctx.input)
    limit = ctx.max_tokens(CHAT)
    user, history, truncated = fit(given, ctx.input_budget(CHAT, limit))
    result = await ctx.generate(CHAT, user, history=history, max_tokens=limit)
    return TaskResult(text=result.text, truncated=truncated or result.truncated)
