"""What every prompt is made of: a system prompt, few-shot examples and an output schema.

One module per task holds its `PromptSpec`; `tasks.registry` pairs each with
its task (`task` is also the label its LLM calls are accounted under). Output
models are bounded (every string has a max length, every list a max size)
because a model stopped at `max_tokens` in the middle of an unbounded string
produces JSON that cannot be parsed; `json_schema_for` checks this when the
spec is built.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from pydantic import BaseModel

from loglytics.providers import json_schema_for

Message = dict[str, str]


@dataclass(frozen=True)
class FewShot:
    """One worked example: a user turn and the assistant's ideal JSON answer."""

    user: str
    assistant: BaseModel


@dataclass(frozen=True)
class PromptSpec:
    task: str
    system: str
    output: type[BaseModel] | None
    examples: Sequence[FewShot] = field(default_factory=tuple)
    max_tokens: int = 384

    def __post_init__(self) -> None:
        if self.output is not None:
            json_schema_for(self.output)  # raises if any string or list is unbounded

    def messages(
        self,
        user: str,
        history: Sequence[Message] = (),
        examples: Sequence[FewShot] | None = None,
    ) -> list[Message]:
        """System prompt, few-shot turns, optional prior conversation, then the user turn.

        `examples` replaces the spec's own (a request-shaped example, or none).
        """
        out: list[Message] = [{"role": "system", "content": self.system}]
        for ex in self.examples if examples is None else examples:
            out.append({"role": "user", "content": ex.user})
            out.append({"role": "assistant", "content": ex.assistant.model_dump_json()})
        out.extend(history)
        out.append({"role": "user", "content": user})
        return out
