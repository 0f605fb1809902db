"""Unit tests of the request path's pure parts: compaction, fitting, answers, floors."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from loglytics.prompts.registry import PROMPTS
from loglytics.providers.tokens import estimate_tokens
from loglytics.storage.plan import QueryPlan
from loglytics.tasks.base import reply_floor
from loglytics.tasks.chat import ChatInput, fit
from loglytics.tasks.compact import EntriesInput, compact, render_entry
from loglytics.tasks.query import render_answer
from loglytics.tasks.summarize import grounded


def test_compact_dedupes_with_counts_and_keeps_order() -> None:
    lines = ["INFO a", "ERROR b", "INFO a", "WARN c", "INFO a"]
    packed = compact(lines, budget_chars=1000)
    assert packed.text == "[x3] INFO a\nERROR b\nWARN c"
    assert (packed.given, packed.unique, packed.kept, packed.truncated) == (5, 3, 3, False)


def test_compact_keeps_errors_first_when_over_budget() -> None:
    lines = [f"INFO line {i} " + "x" * 50 for i in range(50)] + ["ERROR disk full", "WARN hot"]
    packed = compact(lines, budget_chars=200)
    assert packed.truncated and packed.kept < packed.unique
    assert "ERROR disk full" in packed.text and "WARN hot" in packed.text
    assert packed.text.index("INFO") < packed.text.index("ERROR")  # original order kept


def test_compact_caps_long_lines() -> None:
    packed = compact(["E" * 5000], budget_chars=10_000, max_line_chars=100)
    assert len(packed.text) == 100 and packed.shortened == 1 and packed.truncated


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=40), max_size=60), st.integers(50, 2000))
def test_compact_fits_its_budget(lines: list[str], budget: int) -> None:
    packed = compact(lines, budget_chars=budget)
    assert len(packed.text) <= budget
    assert packed.kept <= packed.unique <= packed.given == len(lines)


def test_structured_entries_render_as_lines() -> None:
    entry = {"timestamp": "2024-01-01T00:00:00Z", "level": "ERROR", "message": "boom"}
    assert render_entry(entry) == "2024-01-01T00:00:00Z ERROR boom"
    assert EntriesInput(entries=[entry], text="a\n\nb").lines() == [
        "2024-01-01T00:00:00Z ERROR boom",
        "a",
        "b",
    ]


def test_chat_fit_keeps_newest_history_and_cuts_context_first() -> None:
    given_input = ChatInput(
        message="why?",
        context="c" * 10_000,
        history=[
            {"role": "user", "content": "old " * 500},
            {"role": "assistant", "content": "new"},
        ],
    )
    user, history, truncated = fit(given_input, budget=2000)
    assert truncated and user.endswith("Question: why?")
    assert history == [{"role": "assistant", "content": "new"}]
    assert len(user) <= 2000
    assert fit(ChatInput(message="hi"), budget=2000) == ("hi", [], False)


def test_query_answer_cites_rows() -> None:
    plan = QueryPlan(source="findings", aggregate="count", group_by=["severity"])
    text = render_answer(
        plan, [{"severity": "high", "value": 3}, {"severity": "low", "value": 1.5}], ""
    )
    assert "severity=high, value=3" in text and "value=1.5" in text and "2 row(s)" in text
    assert render_answer(plan, [], "fallback").endswith("no matching rows.")


def test_grounded_allows_only_known_numbers() -> None:
    allowed = {"12", "3"}
    assert grounded("12 errors in 3 sources", allowed)
    assert not grounded("45 errors", allowed)
    assert grounded("no numbers here", allowed)


def test_reply_floors_hold_each_schema_and_fit_the_context() -> None:
    for task, spec in PROMPTS.items():
        if spec.output is None or task == "query":
            continue
        floor = reply_floor(spec.output)
        assert 64 <= floor <= 400, (task, floor)
        assert estimate_tokens(spec.examples[0].assistant.model_dump_json()) < floor
