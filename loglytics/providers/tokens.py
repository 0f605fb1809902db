"""Token counts: the provider's numbers when it reports them, an estimate otherwise.

Why ~4 characters per token: it is the usual rule of thumb for English and
log text on BPE vocabularies, costs nothing, and errs high on the short
identifiers logs are full of, which is the safe side for quotas. Estimated
counts are flagged so billing can tell them apart.
"""

from __future__ import annotations

from collections.abc import Iterable

from loglytics.schemas import TokenUsage

CHARS_PER_TOKEN = 4
MESSAGE_OVERHEAD_TOKENS = 4  # role markers and separators of a chat template


def estimate_tokens(text: str) -> int:
    """Tokens in `text`, rounded up; 0 only for the empty string."""
    return -(-len(text) // CHARS_PER_TOKEN)


def estimate_messages(messages: Iterable[dict[str, str]]) -> int:
    """Prompt tokens of a chat, including per-message template overhead."""
    return sum(estimate_tokens(m.get("content", "")) + MESSAGE_OVERHEAD_TOKENS for m in messages)


def usage_from(
    prompt_tokens: int | None,
    completion_tokens: int | None,
    *,
    messages: Iterable[dict[str, str]],
    text: str,
) -> TokenUsage:
    """Provider counts if both are present, else estimates with `estimated=True`."""
    if prompt_tokens is not None and completion_tokens is not None:
        return TokenUsage(
            prompt_tokens=int(prompt_tokens), completion_tokens=int(completion_tokens)
        )
    return TokenUsage(
        prompt_tokens=int(prompt_tokens)
        if prompt_tokens is not None
        else estimate_messages(messages),
        completion_tokens=int(completion_tokens)
        if completion_tokens is not None
        else estimate_tokens(text),
        estimated=True,
    )


def add_usage(a: TokenUsage, b: TokenUsage) -> TokenUsage:
    """Sum two usages; the sum is estimated if either part was."""
    return TokenUsage(
        prompt_tokens=a.prompt_tokens + b.prompt_tokens,
        completion_tokens=a.completion_tokens + b.completion_tokens,
        estimated=a.estimated or b.estimated,
    )
