"""The value type every parser in this package produces."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ParsedLine:
    """One log line split into the fields downstream stages key on.

    Frozen and slotted because millions of these flow through ingest: slots keep
    them small and immutability lets later stages share them without copying.
    """

    timestamp: float | None
    """Unix seconds; UTC is assumed when the line carries no zone."""
    level: str
    """Normalised upper-case level (see :func:`normalise_level`) or ``"UNKNOWN"``."""
    component: str | None
    """Logger, class, program or module that wrote the line, when the layout has one."""
    message: str
    """The free text after the header, trailing whitespace removed."""
    format: str
    """Name of the layout that matched (a key of ``FORMATS``, ``"custom"`` or ``"raw"``)."""
