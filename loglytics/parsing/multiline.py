"""Multi-line events: which raw lines continue the event before them, and what identifies a trace.

Rules in the spirit of the multiline parsers of Fluent Bit and Vector, but
driven by the source's header rather than by a configured start pattern: a
line that has the source's header starts an event; a line without it
continues the open event when it looks like a continuation (indented, a Java
``at``/``Caused by:``/``... N more``, a Python traceback, a Go panic and its
goroutine dump, the inside of a pretty-printed JSON object) or, in a source
whose lines carry a header, always. Events are bounded in lines and bytes.

The identity of a trace (:func:`trace_identity`) is its exception type and top
frame, which join the header's message for template mining, so one template
stands for one kind of failure at one place rather than one per ``at`` line.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from loglytics.parsing.levels import LEVEL_WORDS
from loglytics.parsing.model import ParsedLine


@dataclass(frozen=True, slots=True)
class JoinConfig:
    """Bounds of one joined event and how long an event may wait for its continuation."""

    max_lines: int = 500
    max_bytes: int = 65_536
    flush_after: float = 2.0
    """Seconds a held event waits for continuation lines in the source's next message."""
    max_text: int = 8_192
    """Characters of an event's full text kept for exemplars."""


# A cheap first look at a line that may open a block (any of the patterns below).
_BLOCK_START: Final = re.compile(
    r'\{|panic: |fatal error: |SIG(?:QUIT|ABRT): |goroutine \d|Exception in thread "|Traceback \('
    r"|\s*(?:at [\w$.<>/]|Caused by: |Suppressed: |\.\.\. \d)"
)
# The first line of a pretty-printed object: `{` alone, or `{"key": ...` left open.
_JSON_OPEN: Final = re.compile(r'\{\s*(?:$|"[^"\n]{0,256}"\s*:)')
_GO_START: Final = re.compile(r"(?:panic: |fatal error: |SIGQUIT: |SIGABRT: )")
_GOROUTINE: Final = re.compile(r"goroutine \d+ \[")
_JAVA_START: Final = re.compile(r'Exception in thread "')
_PY_START: Final = "Traceback (most recent call last):"
_JAVA_CONT: Final = re.compile(
    r"(?:at [\w$.<>/]+\(|Caused by: |Suppressed: |\.\.\. \d+ (?:more|common frames omitted))"
)
_PY_CONT: Final = re.compile(
    r"(?:During handling of the above exception|The above exception was the direct cause)"
)
_EXCEPTION_LINE: Final = re.compile(
    r"(?:Caused by: )?(?P<type>[A-Za-z_$][\w$]*(?:\.[\w$]+)+|[A-Z]\w*(?:Error|Exception|Exit|"
    r"Interrupt|Warning|Failure))(?::\s|:?$)"
)
_JAVA_FRAME: Final = re.compile(r"\s*at (?P<frame>[\w$.<>/-]+)\(")
_PY_FRAME: Final = re.compile(r'\s+File "(?P<file>[^"]+)", line \d+, in (?P<func>\S+)')
_PY_TYPE: Final = re.compile(r"(?P<type>[A-Za-z_][\w.]*)(?::\s.*|:?)$")
_GO_FRAME: Final = re.compile(r"(?P<func>[\w./*()\[\]-]+?)\(")
# A second line `LEVEL: message` under a header without a level: Java util logging.
_LEVEL_LINE: Final = re.compile(r"(?P<level>[A-Z]{3,9}): (?P<message>.*)", re.DOTALL)
HOLD_LEVELS: Final = frozenset({"WARN", "ERROR", "CRITICAL", "FATAL"})
"""A single line of these levels may be followed by a trace: the last one of a message waits."""


@dataclass(slots=True)
class OpenEvent:
    """The raw lines of the event being joined, and what kind of block it is in."""

    lines: list[str]
    since: float
    """Arrival time of its first line (the flush timeout counts from it)."""
    mode: str = ""
    """``json`` (inside braces), ``python``, ``go`` or ``java`` once a trace is seen."""
    depth: int = 0
    size: int = 0
    header: bool = True
    """Its first line had the source's header (a trace whose head was lost has not)."""
    first: ParsedLine | None = None
    """Its first line parsed (not stored: parsed again after a restore)."""
    origin: int = -1
    """Index of its first line in the current parse call (-1: an earlier call)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "lines": self.lines,
            "since": self.since,
            "mode": self.mode,
            "depth": self.depth,
            "header": self.header,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OpenEvent:
        lines = [str(x) for x in data["lines"]]
        return cls(
            lines,
            float(data["since"]),
            str(data.get("mode", "")),
            int(data.get("depth", 0)),
            sum(map(len, lines)),
            bool(data.get("header", True)),
        )

    def waits(self, *, joins: bool) -> bool:
        """Whether this event, last of a message, should wait for the source's next message.

        A trace in progress waits. In a source whose events have spanned lines
        before (``joins``), so does a line that opens a block (``{``, a panic),
        a line a trace often follows (WARN and above), and a header without a
        level (Java util logging writes the level on the record's second
        line). A single line of a source that never wrote a multi-line event
        never waits.
        """
        if len(self.lines) > 1:
            return True
        if not joins:
            return False  # a single line of a source that never joined waits for nothing
        if self.mode:
            return True
        level = self.first.level if self.first is not None else ""
        return level in HOLD_LEVELS or (self.header and level == "UNKNOWN")


def json_depth(line: str) -> int:
    """Net ``{``/``[`` nesting a line opens, outside of JSON strings."""
    depth = 0
    in_string = escaped = False
    for c in line:
        if in_string:
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
        elif c in "{[":
            depth += 1
        elif c in "}]":
            depth -= 1
    return depth


@dataclass(slots=True)
class Joiner:
    """Decides, line by line, whether a line starts an event or continues the open one."""

    config: JoinConfig = field(default_factory=JoinConfig)

    def start_mode(self, line: str) -> tuple[str, int]:
        """The block a starting line opens: (mode, JSON depth)."""
        if not _BLOCK_START.match(line):
            return "", 0  # nearly every line: one match, no block
        if _JSON_OPEN.match(line):
            depth = json_depth(line)
            if depth > 0:
                return "json", depth
        if _GO_START.match(line) or _GOROUTINE.match(line):
            return "go", 0
        if _JAVA_START.match(line):
            return "java", 0
        if line.startswith(_PY_START):
            return "python", 0
        if _JAVA_CONT.match(line.lstrip()):
            return "java", 0  # a trace whose head went out before (bounds, a flush)
        return "", 0

    def continues(self, event: OpenEvent | None, line: str, *, header: bool) -> bool:
        """True when ``line`` belongs to ``event``: see the module docstring for the rules.

        Only the continuations the rules name join: a line that is merely
        unlike the source's header (a banner, a line of another layout)
        stays an event of its own.
        """
        if event is None:
            return False
        if event.mode == "json" and event.depth > 0:
            # Inside a pretty-printed object: indented members, or its closing bracket.
            return bool(line) and (line[0] in " \t}]")
        if header or _GO_START.match(line) or _JAVA_START.match(line):
            return False
        mode = event.mode
        if _GOROUTINE.match(line):
            return mode == "go"
        if line.startswith(_PY_START):  # logger.exception(), or a chained exception
            return event.header or mode == "python_end"
        under = event.header or bool(mode)
        if not line.strip():  # blank lines inside a Go dump or between chained exceptions
            return mode in ("go", "python", "python_end")
        if line[0] in " \t" or _JAVA_CONT.match(line) or _PY_CONT.match(line):
            return under
        if mode in ("python", "go"):
            return True  # a traceback's exception line, a dump's function lines
        if _EXCEPTION_LINE.match(line):
            return under
        first = event.first
        jul = event.header and len(event.lines) == 1 and first is not None
        return (
            jul and first is not None and first.level == "UNKNOWN" and level_line(line) is not None
        )

    def fits(self, event: OpenEvent, line: str) -> bool:
        """Whether one more line keeps the event within its bounds."""
        cfg = self.config
        return len(event.lines) < cfg.max_lines and event.size + len(line) <= cfg.max_bytes

    def add(self, event: OpenEvent, line: str) -> None:
        """Append a continuation line, tracking the block it is in."""
        event.lines.append(line)
        event.size += len(line)
        mode = event.mode
        if mode == "json":
            event.depth += json_depth(line)
        elif mode == "python":
            if line and line[0] not in " \t" and not _PY_CONT.match(line):
                event.mode = "python_end"  # the exception line closes the traceback
        elif line.startswith(_PY_START):
            event.mode = "python"
        elif not mode:
            started, _ = self.start_mode(line.lstrip())
            if started in ("python", "go", "java"):
                event.mode = started
            elif _JAVA_CONT.match(line.lstrip()) or _EXCEPTION_LINE.match(line):
                event.mode = "java"


def may_open_block(line: str) -> bool:
    """One cheap match: the line may open a block (JSON, a trace, a dump) or continue one."""
    return _BLOCK_START.match(line) is not None


def trace_identity(lines: Sequence[str]) -> str | None:
    """``"<exception type> at <top frame>"`` of a Java, Python or Go trace in ``lines``, if any."""
    return _python(lines) or _go(lines) or _java(lines)


def _java(lines: Sequence[str]) -> str | None:
    for i, line in enumerate(lines):
        text = (
            line[len('Exception in thread "') :].partition('" ')[2]
            if _JAVA_START.match(line)
            else line
        )
        m = _EXCEPTION_LINE.match(text.strip())
        if m is None:
            continue
        frame = next((f["frame"] for ln in lines[i + 1 :] if (f := _JAVA_FRAME.match(ln))), None)
        return f"{m['type']} at {frame}" if frame else m["type"]
    return None


def _python(lines: Sequence[str]) -> str | None:
    if not any(line.startswith(_PY_START) for line in lines):
        return None
    frames = [m for line in lines if (m := _PY_FRAME.match(line))]
    kind = next(
        (
            m["type"]
            for line in reversed(lines)
            if line
            and line[0] not in " \t"
            and (m := _PY_TYPE.match(line))
            and not line.startswith(_PY_START)
        ),
        None,
    )
    if kind is None:
        return None
    if not frames:
        return kind
    top = frames[-1]
    return f"{kind} at {os.path.basename(top['file'])}:{top['func']}"


def _go(lines: Sequence[str]) -> str | None:
    start = next((i for i, line in enumerate(lines) if _GO_START.match(line)), None)
    if start is None:
        return None
    kind = lines[start].partition(":")[0]
    for i in range(start + 1, len(lines)):
        if _GOROUTINE.match(lines[i]) and i + 1 < len(lines):
            m = _GO_FRAME.match(lines[i + 1])
            if m is not None:
                return f"{kind} at {m['func']}"
    return kind


def level_line(line: str) -> tuple[str, str] | None:
    """(level word, message) of a ``LEVEL: message`` line (Java util logging's second line)."""
    m = _LEVEL_LINE.fullmatch(line)
    if m is None or m["level"] not in LEVEL_WORDS:
        return None
    return m["level"], m["message"]
