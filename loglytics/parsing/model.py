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


@dataclass(slots=True)
class ParsedColumns:
    """A batch of parsed lines as parallel columns, in line order.

    What the ingest hot path keeps of :class:`ParsedLine`: one list per field
    instead of one object per line, so that later stages can work on whole
    columns with C-level builtins. Components are not kept: nothing after
    parsing reads them on that path.
    """

    timestamps: list[float | None]
    levels: list[str]
    messages: list[str]
    texts: list[str] | None = None
    """Each event's full text (bounded) when some event joined several lines, else ``None``:
    ``messages`` then hold what mining keys on (the header's message, plus a trace's
    exception type and top frame), ``texts`` what exemplars show."""
    lines: list[int] | None = None
    """Raw lines per event, when some event joined several (else one each)."""


@dataclass(frozen=True, slots=True)
class ParsedEvent:
    """One event: the parsed fields of its header line, and how many raw lines it joined."""

    timestamp: float | None
    level: str
    component: str | None
    message: str
    """What follows the header fields (of the header line, or of a JUL record's level line)."""
    format: str
    lines: int = 1
    text: str | None = None
    """The full text of a joined event, bounded (``None`` for a single line)."""
    identity: str | None = None
    """A trace's exception type and top frame (``"java.io.IOException at a.B.c"``)."""
    origin: int = -1
    """Index of its first line among the lines of the parse call that returned it
    (``-1``: it began in an earlier call and was held)."""

    @property
    def mined_message(self) -> str:
        """What template mining keys on: the message, and a trace's identity if it has one."""
        return f"{self.message} | {self.identity}" if self.identity else self.message
