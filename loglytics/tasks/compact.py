"""Compaction: what makes a few hundred log lines fit a small model's context.

Identical lines are sent once with their count (`[x12] line`), each line is
capped, and when the rest still does not fit, the lines most likely to matter
(errors, then warnings, then the most repeated) are kept, in their original
order. The model reads less, so it costs less and answers faster.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, model_validator

MAX_LINE_CHARS = 400
MAX_PROMPT_CHARS = 2000
ENTRIES = AliasChoices("entries", "log_entries")
"""`log_entries` is the product brief's name for `entries`; both are accepted."""
_ERROR = re.compile(
    r"\b(FATAL|CRIT(ICAL)?|EMERG|ALERT|PANIC|ERR(OR)?|SEVERE|EXCEPTION|TRACEBACK|FAIL(ED|URE)?)\b",
    re.IGNORECASE,
)
_WARN = re.compile(r"\bWARN(ING)?\b", re.IGNORECASE)
_MESSAGE_KEYS = ("message", "msg", "line", "raw", "text", "log")
_PREFIX_KEYS = ("timestamp", "ts", "time", "level", "severity", "source", "service", "logger")


class EntriesInput(BaseModel):
    """Entries as a list (strings, or objects with a message) and/or one text of lines,
    with an optional `prompt`: what the caller wants to know about them."""

    model_config = ConfigDict(extra="forbid")

    entries: list[str | dict[str, Any]] = Field(default_factory=list, validation_alias=ENTRIES)
    text: str | None = None
    prompt: str | None = None

    @model_validator(mode="after")
    def _some(self) -> EntriesInput:
        if not self.lines():
            raise ValueError("give entries (a list of log lines) or text")
        return self

    def lines(self) -> list[str]:
        return entry_lines(self.entries, self.text)

    def header(self) -> str:
        return entries_header(self.prompt)


def entries_header(prompt: str | None) -> str:
    """What precedes the entries in the user turn: the caller's question, cut, if any."""
    if not prompt or not prompt.strip():
        return "Entries:"
    return f"Question: {prompt.strip()[:MAX_PROMPT_CHARS]}\nEntries:"


def entry_lines(entries: Iterable[str | Mapping[str, Any]], text: str | None) -> list[str]:
    """The non-blank lines of `entries` (each rendered as one line) followed by `text`'s."""
    out = [render_entry(e) for e in entries]
    if text:
        out.extend(text.splitlines())
    return [line for line in (s.strip() for s in out) if line]


def render_entry(entry: str | Mapping[str, Any]) -> str:
    """A structured entry as one line: its time/level/source prefix and its message."""
    if isinstance(entry, str):
        return entry
    message = next((entry[k] for k in _MESSAGE_KEYS if isinstance(entry.get(k), str)), None)
    if message is None:
        return orjson.dumps(entry, option=orjson.OPT_SORT_KEYS, default=str).decode()
    prefix = [str(entry[k]) for k in _PREFIX_KEYS if isinstance(entry.get(k), str | int | float)]
    return " ".join([*prefix, message])


@dataclass(frozen=True)
class Entry:
    """One kept line (capped) and how many times it occurred in the input."""

    line: str
    count: int

    @property
    def rank(self) -> int:
        """0 error, 1 warning, 2 anything else."""
        return _rank(self.line)


@dataclass(frozen=True)
class Compacted:
    """The text sent to the model, and how many lines were given, distinct, kept and cut.

    `entries` are the kept lines in the order of `text`: tasks number them so a
    model refers to lines by index and code derives every count from them.
    """

    text: str
    given: int
    unique: int
    kept: int
    shortened: int
    entries: tuple[Entry, ...] = ()

    @property
    def truncated(self) -> bool:
        return self.kept < self.unique or self.shortened > 0


def _rank(line: str) -> int:
    if _ERROR.search(line):
        return 0
    if _WARN.search(line):
        return 1
    return 2


def compact(
    lines: Iterable[str], *, budget_chars: int, max_line_chars: int = MAX_LINE_CHARS
) -> Compacted:
    """Deduplicate, cap and select lines to fit `budget_chars` (see the module docstring)."""
    counts: dict[str, int] = {}
    given = 0
    for line in lines:
        given += 1
        counts[line] = counts.get(line, 0) + 1
    shortened = 0
    rendered: list[tuple[int, int, int, str]] = []  # (rank, -count, order, text)
    bodies: list[Entry] = []
    for order, (line, count) in enumerate(counts.items()):
        body = line
        if len(body) > max_line_chars:
            body = body[: max_line_chars - 1] + "…"
            shortened += 1
        text = f"[x{count}] {body}" if count > 1 else body
        rendered.append((_rank(line), -count, order, text))
        bodies.append(Entry(body, count))
    total = sum(len(r[3]) + 1 for r in rendered)
    if total <= budget_chars:
        chosen = rendered
    else:
        chosen, used = [], 0
        for item in sorted(rendered):
            if used + len(item[3]) + 1 > budget_chars:
                continue
            chosen.append(item)
            used += len(item[3]) + 1
        chosen.sort(key=lambda r: r[2])
    return Compacted(
        text="\n".join(r[3] for r in chosen),
        given=given,
        unique=len(counts),
        kept=len(chosen),
        shortened=shortened,
        entries=tuple(bodies[r[2]] for r in chosen),
    )
