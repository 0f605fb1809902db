"""Grounded wording: a model's verdict speaks only of what the rules flagged.

Why: a small model given a few-shot example tends to copy it. In the demo the
memory leak in acme/jobs came back titled "The service cannot reach orders-db;
requests fail", category `database`: the prompt example's words, not the
candidate's. A verdict's title, summary and category are used only when

* they share content words with the candidate's template or exemplar lines
  (something the candidate actually says), and
* they copy no phrase of four or more words from the prompt's own example
  (`loglytics.prompts.detection`: its user text and its verdicts).

Otherwise the verdict is dropped whole and the finding keeps the rules'
wording (the judge counts it in `loglytics_llm_errors{kind="ungrounded_verdict"}`).
The rules' facts (what fired, on which template, how often) never come from
the model either way.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from loglytics.prompts.detection import EXAMPLE, EXAMPLE_USER, Verdict

COPIED_PHRASE_WORDS = 4
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


def phrases(text: str, n: int = COPIED_PHRASE_WORDS) -> set[tuple[str, ...]]:
    """Every run of `n` consecutive words of the text."""
    seq = words(text)
    return {tuple(seq[i : i + n]) for i in range(len(seq) - n + 1)}


def example_phrases() -> frozenset[tuple[str, ...]]:
    """The prompt example's phrases of four words (its user text and its verdicts)."""
    texts = [EXAMPLE_USER]
    for v in EXAMPLE.verdicts:
        texts += [v.title, v.summary, v.recommendation]
    return frozenset(p for t in texts for p in phrases(t))


def grounded(verdict: Verdict, candidate_texts: Iterable[str]) -> bool:
    """Whether the verdict's wording is about the candidate and not the prompt's example."""
    wording = [verdict.title, verdict.summary, verdict.category]
    said = set().union(*(content_words(t) for t in candidate_texts))
    # Template words such as `<*>` or units are shared by every template: a match has to
    # be a word of the candidate's own text.
    if not said & set().union(*(content_words(t) for t in wording)):
        return False
    copied = example_phrases()
    candidate_phrases = set().union(*(phrases(t) for t in candidate_texts))
    # A phrase the candidate itself contains is not copied, even if the example has it too.
    return not any((phrases(t) & copied) - candidate_phrases for t in wording)
