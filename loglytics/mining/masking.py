"""Generic variable masking for log messages.

This module is the definition: a single regular expression used with
:meth:`re.Pattern.split`, one pass yielding both the constant text and the
variable values.  Masking runs on every incoming line, so the miner calls
`mask_many`: the compiled scan of ``loglytics._speedups`` (one C loop per
batch, about four times faster), which the tests hold to exactly this
definition, or this definition itself where no compiler was available at
install time.

What it masks is deliberately generic: any run that starts with an ASCII
digit and continues over ASCII letters, digits, ``_``, ``.``, ``:`` and ``-``.  That covers
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
from functools import cache
from typing import Final

__all__ = ["DATE_WORDS", "MARK", "Masker", "mask_many"]

MARK: Final = "<*>"
"""Placeholder written in place of every variable value."""

_LITERAL_MARK_SUBSTITUTE: Final = "<?>"

DATE_WORDS: Final = frozenset(
    [
        *("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"),
        *("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
        *("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
        *("January", "February", "March", "April", "June", "July", "August"),
        *("September", "October", "November", "December"),
    ]
)
"""Calendar words from timestamps embedded in messages.

They are not masked (that would cost a slower regex on every line); instead
the miner treats two of them in the same position as variable values, never
as the word that distinguishes one event from another.
"""

# Starts at a digit (so the engine can skip ahead to digits) and takes the
# rest of the run.  ASCII classes on purpose: Unicode-aware \d and \w make
# every line ~25% slower and log variables are ASCII in practice.  A
# trailing "." or ":" ends up in the value ("42."); the stricter form that
# leaves it out costs ~15% more per line.
_DEFAULT_PATTERN: Final = r"([0-9][0-9A-Za-z_.:-]*)"


class Masker:
    """Splits a message into its masked shape and the masked values.

    Instances are immutable after construction and hold no per-line state, so
    one masker can be shared by many miners.
    """

    __slots__ = ("pattern", "split")

    def __init__(self, pattern: str = _DEFAULT_PATTERN) -> None:
        compiled = re.compile(pattern)
        if compiled.groups != 1:
            # re.split only interleaves values when there is exactly one group.
            raise ValueError("mask pattern must have exactly one capturing group")
        self.pattern = pattern
        self.split = compiled.split
        """Raw ``re.split``: constants at even, values at odd indices."""

    def mask(self, message: str) -> tuple[str, tuple[str, ...]]:
        """Return ``(shape, values)``: the message with ``<*>`` for each value.

        A literal ``<*>`` in the input is rewritten first so that the number
        of marks in the shape always equals ``len(values)``.
        """
        if MARK in message:
            message = message.replace(MARK, _LITERAL_MARK_SUBSTITUTE)
        parts = self.split(message)
        if len(parts) == 1:
            return message, ()
        return MARK.join(parts[0::2]), tuple(parts[1::2])


@cache
def _mask() -> Masker:
    """One shared `Masker`, made on first use (nothing is compiled at import)."""
    return Masker()


def _mask_many(messages: list[str]) -> tuple[list[str], list[tuple[str, ...]]]:
    """``Masker().mask`` over a batch, as (shapes, values) columns."""
    if not isinstance(messages, list):
        raise TypeError(f"mask_many() expects a list, not {type(messages).__name__}")
    shapes: list[str] = []
    values: list[tuple[str, ...]] = []
    mask = _mask().mask
    for message in messages:
        if not isinstance(message, str):
            raise TypeError(f"mask_many() expects str items, not {type(message).__name__}")
        shape, params = mask(message)
        shapes.append(shape)
        values.append(params)
    return shapes, values


try:
    from loglytics._speedups import mask_many
except ImportError:  # no compiler at install time
    mask_many = _mask_many
