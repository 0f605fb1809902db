"""What a model may choose in an entries task: closed lists, entry references, and their rules.

The model picks; code counts. An answer names entries by the index they carry
in the prompt (`[3]`), a category from `CATEGORIES`, a severity; every count,
total and tally in the reply is derived from the entries it picked. The rules
here (`category_of`, `severity_of`) are the deterministic answer's wording
when a model's output cannot be grounded.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, get_args

from pydantic import Field

from loglytics.schemas import Severity

Category = Literal[
    "database",
    "network",
    "auth",
    "disk",
    "memory",
    "timeout",
    "config",
    "capacity",
    "application",
    "other",
]
CATEGORIES: tuple[Category, ...] = get_args(Category)

AnomalyKind = Literal["latency", "volume", "rare_event", "error_rate", "value", "other"]

MAX_ENTRY_INDEX = 199
EntryRef = Annotated[int, Field(ge=0, le=MAX_ENTRY_INDEX)]
EntryRefs = Annotated[list[EntryRef], Field(max_length=6, description="indices of entries")]

_KEYWORDS: tuple[tuple[Category, re.Pattern[str]], ...] = (
    ("database", re.compile(r"\b(db|database|sql|query|postgres|mysql|mongo|redis)\b", re.I)),
    ("timeout", re.compile(r"tim(e|ed)[ -]?out|deadline", re.I)),
    ("auth", re.compile(r"\b(auth\w*|login|password|token|permission|denied|forbidden)\b", re.I)),
    ("disk", re.compile(r"\b(disk|filesystem|no space|inode|volume)\b", re.I)),
    ("memory", re.compile(r"\b(memory|oom|heap|out of memory)\b", re.I)),
    ("network", re.compile(r"\b(connect\w*|refused|unreachable|socket|dns|network)\b", re.I)),
    ("config", re.compile(r"\b(config\w*|setting|missing key|invalid value)\b", re.I)),
    ("capacity", re.compile(r"\b(queue|full|exhausted|limit|throttl\w*|overload\w*)\b", re.I)),
)
_CRITICAL = re.compile(r"\b(FATAL|CRIT(ICAL)?|EMERG|ALERT|PANIC)\b", re.I)
_ERROR = re.compile(r"\b(ERR(OR)?|SEVERE|EXCEPTION|TRACEBACK|FAIL(ED|URE)?)\b", re.I)
_WARN = re.compile(r"\bWARN(ING)?\b", re.I)


def category_of(line: str) -> Category:
    """The first category whose keywords the line has; `application` otherwise."""
    return next((cat for cat, pattern in _KEYWORDS if pattern.search(line)), "application")


def severity_of(line: str) -> Severity:
    """The line's own level as a severity: fatal-like critical, error high, warning medium."""
    if _CRITICAL.search(line):
        return "critical"
    if _ERROR.search(line):
        return "high"
    if _WARN.search(line):
        return "medium"
    return "low"


SEVERITY_ORDER: dict[Severity, int] = {"low": 0, "medium": 1, "high": 2, "critical": 3}
SEVERITY_LADDER: tuple[Severity, ...] = ("low", "medium", "high", "critical")


def bounded_severity(chosen: Severity, rule: Severity) -> Severity:
    """The model's severity, never lower than the rules' and at most one step above it."""
    step = min(SEVERITY_ORDER[chosen], SEVERITY_ORDER[rule] + 1)
    return SEVERITY_LADDER[max(step, SEVERITY_ORDER[rule])]
