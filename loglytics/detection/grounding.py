"""Grounded wording: a model's verdict speaks only of what the rules flagged.

Why: a small model given a few-shot example tends to copy it. In the demo the
memory leak in acme/jobs came back titled "The service cannot reach orders-db;
requests fail", category `database`: the prompt example's words, not the
candidate's. A verdict's words are used only when

* they pass the one grounding check every model output passes
  (`loglytics.prompts.grounding`) against the candidate's template, exemplar
  lines and signal details: no identifier or number the candidate lacks, no
  phrase of four words from the prompt's example or instructions; and
* its title, summary and category share content words with the candidate
  (something the candidate actually says).

Otherwise the judge asks once more saying what failed; a verdict that still
fails is dropped whole and the finding keeps the rules' wording. The rules'
facts (what fired, on which template, how often) never come from the model.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from loglytics.prompts.detection import DETECTION, Verdict
from loglytics.prompts.grounding import Failure, Ground, prompt_texts, strings_of

_WORD = re.compile(r"[a-z0-9]+(?:[-_.][a-z0-9]+)*")
# Words that carry no content of their own (they make no sentence about anything).
_STOPWORD_TEXT = """a an the and or but of in on at to for from by with without into onto over under
    is are was were be been being has have had do does did not no nor so than then that
    this these those it its as if when while which who whom what where why how all any
    each some more most less very can cannot could may might must shall should will would
    there their they them he she we you your our i me my service services request
    requests error errors issue problem log logs line lines template message messages"""
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())


def words(text: str) -> list[str]:
    """The text's words, lower case, in order (identifiers such as orders-db kept whole)."""
    return _WORD.findall(text.lower())


def content_words(text: str) -> set[str]:
    """Words that say something: no stopwords, no bare numbers, at least three letters."""
    return {w for w in words(text) if w not in _STOPWORDS and len(w) >= 3 and not w.isdigit()}


def verdict_failures(verdict: Verdict, candidate_texts: Iterable[str]) -> tuple[Failure, ...]:
    """Every way the verdict is not about the candidate (empty: grounded)."""
    texts = list(candidate_texts)
    ground = Ground.of("\n".join(texts), prompt_texts(DETECTION.system, DETECTION.examples))
    failures = ground.check(strings_of(verdict.model_copy(update={"ref": 0})))
    wording = [verdict.title, verdict.summary, verdict.category]
    said = set().union(*(content_words(t) for t in texts))
    # Template words such as `<*>` or units are shared by every template: a match has to
    # be a word of the candidate's own text.
    if not said & set().union(*(content_words(t) for t in wording)):
        failures += (Failure("unrelated", verdict.title),)
    return failures


def grounded(verdict: Verdict, candidate_texts: Iterable[str]) -> bool:
    """Whether the verdict's wording is about the candidate and not the prompt's example."""
    return not verdict_failures(verdict, candidate_texts)
