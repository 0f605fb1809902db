"""The one grounding check every model output passes before it reaches a reply or a finding.

A small model copies its few-shot examples and invents names; a bigger one
does it less often, not never. So whatever the model wrote is checked against
what it was shown, the same way for every task and for detection's verdicts:

- every identifier-like token (host names, paths, ports, ids, service names:
  anything with a digit, an inner `-`, `_`, `.`, `:`, `=` or `@`, a leading
  `/`, or an inner capital) must occur in the input;
- every number must be one of the input's numbers;
- no phrase of `PHRASE_WORDS` words from the prompt's examples or system
  prompt may appear unless the input has it too;
- every index the output refers to must exist.

A failed check names what failed (`repair_note`), so the one repair round can
say it; what still fails is replaced by the caller's deterministic answer.
`GroundingMetrics` counts outcomes on a registry the caller hands in.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, get_args, get_origin

from prometheus_client import CollectorRegistry, Counter
from pydantic import BaseModel

from loglytics.prompts.base import FewShot

PHRASE_WORDS = 4
MAX_REPORTED = 6
"""Failures named in a repair note: enough to say what went wrong, short enough to read."""

Outcome = Literal["first_try", "repaired", "fell_back"]
OUTCOMES: tuple[Outcome, ...] = get_args(Outcome)
FailureKind = Literal["identifier", "number", "example_text", "index", "unrelated"]

_CHUNK = re.compile(r"[^\s,;()\[\]{}<>\"'`|]+")
_NUMBER = re.compile(r"\d+(?:\.\d+)*")
_WORD = re.compile(r"[a-z0-9]+")
_INNER = re.compile(r"\w[-_.:=@]\w")
_CAMEL = re.compile(r"[a-z][A-Z]")
_EDGE = ".,:;!?*=-@#%~^&+"


@dataclass(frozen=True, slots=True)
class Failure:
    """One reason an output is not grounded, with the offending text."""

    kind: FailureKind
    value: str

    def describe(self) -> str:
        if self.kind == "identifier":
            return f"'{self.value}' does not occur in the input"
        if self.kind == "number":
            return f"the number {self.value} does not occur in the input"
        if self.kind == "example_text":
            return f"'{self.value}' is copied from the instructions, not the input"
        if self.kind == "index":
            return f"index {self.value} does not exist"
        return f"'{self.value}' says nothing the input says"


def identifiers(text: str) -> list[str]:
    """The identifier-like tokens of `text` (see the module docstring), in order."""
    out: list[str] = []
    for chunk in _CHUNK.findall(text):
        token = chunk.strip(_EDGE)
        if not token or not any(c.isalnum() for c in token):
            continue
        segments = [s for s in re.split(r"[^0-9A-Za-z]+", token) if s]
        if all(len(s) == 1 and s.isalpha() for s in segments):
            continue  # e.g., i.e., a.m.
        if (
            any(c.isdigit() for c in token)
            or _INNER.search(token)
            or _CAMEL.search(token)
            or (token.startswith("/") and len(token) > 1)
        ):
            out.append(token)
    return out


def _number(text: str) -> str:
    whole, _, rest = text.partition(".")
    return (whole.lstrip("0") or "0") + ("." + rest if rest else "")


def numbers(text: str) -> set[str]:
    """The numbers of `text`, leading zeros dropped (`05` and `5` are one number)."""
    return {_number(n) for n in _NUMBER.findall(text)}


def phrases(text: str, size: int = PHRASE_WORDS) -> set[tuple[str, ...]]:
    """Every run of `size` consecutive words of `text`, lower-cased."""
    words = _WORD.findall(text.lower())
    return {tuple(words[i : i + size]) for i in range(len(words) - size + 1)}


def strings_of(value: object) -> list[str]:
    """The free text inside a model output, depth first: every string a model wrote.

    Fields typed as a closed list (a `Literal`: a category, a severity, a plan's
    source) are choices, not writing, so they are not checked.
    """
    if isinstance(value, str):
        return [value]
    if isinstance(value, BaseModel):
        out: list[str] = []
        for name, info in type(value).model_fields.items():
            if _closed(info.annotation):
                continue
            out.extend(strings_of(getattr(value, name)))
        return out
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings_of(v)]
    if isinstance(value, list | tuple):
        return [s for v in value for s in strings_of(v)]
    return []


def _closed(annotation: object) -> bool:
    """Whether a field's type is a Literal, or an optional or list of one."""
    if get_origin(annotation) is Literal:
        return True
    args = get_args(annotation)
    return bool(args) and all(_closed(a) or a is type(None) for a in args)


def prompt_texts(system: str, examples: Sequence[FewShot]) -> list[str]:
    """What a prompt shows besides the input: the texts no answer may copy."""
    out = [system]
    for example in examples:
        out.append(example.user)
        out.extend(strings_of(example.assistant))
    return out


@dataclass(frozen=True)
class Ground:
    """What one model output may draw on: the input, and the prompt text it must not copy.

    `index_count` is how many numbered items the input showed (None when it
    numbered none). Built once per call; `check` is then pure.
    """

    text: str
    lowered: str
    numbers: frozenset[str]
    copied: frozenset[tuple[str, ...]]
    index_count: int | None

    @classmethod
    def of(cls, source: str, prompt: Iterable[str], index_count: int | None = None) -> Ground:
        own = phrases(source)
        foreign: set[tuple[str, ...]] = set()
        for text in prompt:
            foreign |= phrases(text)
        return cls(
            text=source,
            lowered=source.lower(),
            numbers=frozenset(numbers(source)),
            copied=frozenset(foreign - own),
            index_count=index_count,
        )

    def check(self, texts: Iterable[str], refs: Iterable[int] = ()) -> tuple[Failure, ...]:
        """Every way `texts` (an output's strings) and `refs` (its indices) are ungrounded."""
        found: dict[Failure, None] = {}
        for text in texts:
            for token in identifiers(text):
                if token.lower() not in self.lowered:
                    found[Failure("identifier", token)] = None
            for number in sorted(numbers(text) - self.numbers):
                found[Failure("number", number)] = None
            for phrase in sorted(phrases(text) & self.copied):
                found[Failure("example_text", " ".join(phrase))] = None
        for ref in refs:
            if self.index_count is None or not 0 <= ref < self.index_count:
                found[Failure("index", str(ref))] = None
        return tuple(found)


def is_leak(failure: Failure, prompt: Iterable[str]) -> bool:
    """Whether a failure is text taken from the prompt (copied phrases, the examples' names)."""
    if failure.kind == "example_text":
        return True
    if failure.kind != "identifier":
        return False
    token = failure.value.lower()
    return any(token in text.lower() for text in prompt)


def repair_note(failures: Sequence[Failure], shape: str = "the same JSON shape") -> str:
    """The repair round's user turn: what failed, and what to do instead.

    `shape` is what the answer must keep being (free text says so: a JSON shape
    asked of a chat answer would change what it is).
    """
    named = "; ".join(f.describe() for f in failures[:MAX_REPORTED])
    more = f" (and {len(failures) - MAX_REPORTED} more)" if len(failures) > MAX_REPORTED else ""
    return (
        f"Your answer is not grounded in the input: {named}{more}. Answer again with "
        f"{shape}, using only names, numbers and indices that appear in the input, "
        "in your own words."
    )


class GroundingMetrics:
    """Grounding outcomes by task, provider and outcome, and the tokens repairs cost."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.outputs = Counter(
            "loglytics_grounding_outputs",
            "Model outputs by grounding outcome (first_try, repaired, fell_back)",
            ["task", "provider", "outcome"],
            registry=registry,
        )
        self.repair_tokens = Counter(
            "loglytics_grounding_repair_tokens",
            "Tokens spent on grounding repair rounds",
            ["task", "provider"],
            registry=registry,
        )

    def record(self, task: str, provider: str, outcome: Outcome, repair_tokens: int = 0) -> None:
        self.outputs.labels(task, provider, outcome).inc()
        if repair_tokens:
            self.repair_tokens.labels(task, provider).inc(repair_tokens)
