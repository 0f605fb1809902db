"""Generic variable masking for log messages.

Masking runs on every incoming line, so it is built around a single
precompiled regular expression used with :meth:`re.Pattern.split`: one pass in
C yields both the constant text and the variable values.  The expression only
starts matching at a digit, which lets the regex engine skip quickly over the
(mostly alphabetic) constant text; that keeps masking well under the cost of
the rest of the mining step.

What it masks is deliberately generic: any run that starts with a digit and
continues over word characters joined by ``.``, ``:`` or ``-``.  That covers
integers, decimals, hex ids and UUID tails, IPv4 addresses with ports, dates,
times, versions, durations with units (``523ms``) and the value half of
``key=value`` pairs (``latency_ms=523`` gives ``latency_ms=<*>`` with the
parameter ``"523"``).  Tokens whose variable part starts with a letter (for
example a hex id like ``fe12``) keep a constant prefix (``fe<*>``); the miner's
similarity step generalises those positions, so no system-specific rule is
needed.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["MARK", "Masker", "count_marks"]

MARK: Final = "<*>"
"""Placeholder written in place of every variable value."""

_LITERAL_MARK_SUBSTITUTE: Final = "<?>"

# Starts at a digit; continues over word characters, allowing single ``.``,
# ``:`` or ``-`` separators *between* word runs so trailing punctuation
# ("42." at the end of a sentence, "port 80:") stays constant text.
_DEFAULT_PATTERN: Final = r"(\d\w*(?:[.:-]\w+)*)"


class Masker:
    """Splits a message into its masked shape and the masked values.

    Instances are immutable after construction and hold no per-line state, so
    one masker can be shared by many miners.
    """

    __slots__ = ("_split", "pattern")

    def __init__(self, pattern: str = _DEFAULT_PATTERN) -> None:
        compiled = re.compile(pattern)
        if compiled.groups != 1:
            # re.split only interleaves values when there is exactly one group.
            raise ValueError("mask pattern must have exactly one capturing group")
        self.pattern = pattern
        self._split = compiled.split

    def mask(self, message: str) -> tuple[str, tuple[str, ...]]:
        """Return ``(shape, values)``: the message with ``<*>`` for each value.

        A literal ``<*>`` in the input is rewritten first so that the number
        of marks in the shape always equals ``len(values)``.
        """
        if MARK in message:
            message = message.replace(MARK, _LITERAL_MARK_SUBSTITUTE)
        parts = self._split(message)
        if len(parts) == 1:
            return message, ()
        return MARK.join(parts[0::2]), tuple(parts[1::2])


def count_marks(token: str) -> int:
    """Number of ``<*>`` placeholders in ``token`` (they never overlap)."""
    return token.count(MARK)
