"""chat: a conversation with optional history and context, answered in free text.

Over-long input is cut to fit the context, never refused: the newest turns are
kept, the context is cut before the question is.

The answer is held to what the conversation gave, by the same check as every
other model output (`prompts.grounding`): each identifier-like token and each
number it writes must occur in the message, the context or the history, and no
four-word phrase of the system prompt may appear unless they have it. A small
model answering "how do I read my logs?" invents paths, ports and figures; a
failed answer gets one repair round naming what failed, and a second failure
is answered with `UNGROUNDED` (`grounded` false). Line-leading list markers
("1.", "2)") are layout, not figures, and are not checked.

So the answer is checked before anyone reads it, it is generated whole: a
streaming client receives it as one chunk when it is ready (the service streams
code-made text whole), not token by token.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from loglytics.prompts.base import Message
from loglytics.prompts.chat import CHAT
from loglytics.prompts.grounding import Failure, Ground, Outcome, prompt_texts, repair_note
from loglytics.tasks.base import TaskContext, TaskResult, cut, parse_input

REPAIR_NOTE_TOKENS = 128
"""Room the repair round's note takes next to the first answer; the input budget keeps it."""

UNGROUNDED = (
    "I could not write an answer that uses only the names and figures in this conversation "
    "and its context. Ask again with the log lines or details you want me to read."
)
"""The deterministic answer: says what happened and what would help, and claims nothing."""

_LIST_MARKER = re.compile(r"(?m)^[ \t]*(?:\d{1,2}[.)]|[-*+•])[ \t]+")


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


@dataclass(frozen=True)
class Spoken:
    """A chat answer, how its grounding went, and the unchecked first answer's failures."""

    text: str
    outcome: Outcome
    first_failures: tuple[Failure, ...]
    repair_tokens: int
    truncated: bool

    @property
    def grounded(self) -> bool:
        return self.outcome != "fell_back"


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


def claims(text: str) -> str:
    """The answer as checked: its line-leading list markers dropped (layout, not figures)."""
    return _LIST_MARKER.sub("", text)


def ground_of(user: str, history: list[Message]) -> Ground:
    """What an answer may draw on: the turns the model was shown, not its instructions."""
    shown = "\n".join([*(turn["content"] for turn in history), user])
    return Ground.of(shown, prompt_texts(CHAT.system, CHAT.examples))


async def speak(ctx: TaskContext, given: ChatInput) -> Spoken:
    """The grounded answer to `given`: first try, one repair round, else `UNGROUNDED`."""
    limit = ctx.max_tokens(CHAT)
    budget = ctx.input_budget(CHAT, 2 * limit + REPAIR_NOTE_TOKENS)
    user, history, truncated = fit(given, budget)
    ground = ground_of(user, history)
    first = await ctx.generate(CHAT, user, history=history, max_tokens=limit, stream=False)
    first_failures = ground.check([claims(first.text)])
    if not first_failures:
        return _counted(ctx, first.provider, Spoken(first.text, "first_try", (), 0, truncated))
    again = [*history, {"role": "user", "content": user}]
    again.append({"role": "assistant", "content": first.text})
    note = repair_note(first_failures, shape="a short plain-text answer")
    second = await ctx.generate(CHAT, note, history=again, max_tokens=limit, stream=False)
    spent = second.usage.total
    if ground.check([claims(second.text)]):
        spoken = Spoken(UNGROUNDED, "fell_back", first_failures, spent, truncated)
    else:
        spoken = Spoken(second.text, "repaired", first_failures, spent, truncated)
    return _counted(ctx, second.provider, spoken)


def _counted(ctx: TaskContext, provider: str, spoken: Spoken) -> Spoken:
    if ctx.grounding is not None:
        ctx.grounding.record(CHAT.task, provider or "none", spoken.outcome, spoken.repair_tokens)
    return spoken


async def chat(ctx: TaskContext) -> TaskResult:
    given = parse_input(ChatInput, ctx.input)
    spoken = await speak(ctx, given)
    last = ctx.calls[-1]
    cut_short = last.truncated and spoken.grounded
    return TaskResult(
        text=spoken.text, truncated=spoken.truncated or cut_short, grounded=spoken.grounded
    )
