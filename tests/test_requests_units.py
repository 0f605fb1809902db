"""Unit tests of the request path's pure parts: compaction, fitting, answers, floors."""

from __future__ import annotations

import dataclasses
import inspect
from typing import cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loglytics.gateway.app import build_app
from loglytics.gateway.backend import Backend
from loglytics.gateway.routes import API
from loglytics.providers.tokens import estimate_tokens
from loglytics.schemas import TASKS
from loglytics.storage.plan import QueryPlan
from loglytics.tasks import DATA_MODELS, HANDLERS, PROMPTS, REGISTRY
from loglytics.tasks.base import reply_floor
from loglytics.tasks.chat import ChatInput, fit
from loglytics.tasks.compact import EntriesInput, compact, render_entry
from loglytics.tasks.query import render_answer
from loglytics.tasks.registry import check_registry
from loglytics.tasks.summarize import grounded

INCIDENT_ROUTES = {
    "/api/v1/incidents": "get",
    "/api/v1/incidents/{incident_id}/ack": "post",
    "/api/v1/incidents/{incident_id}/resolve": "post",
    "/api/v1/mutes": "post",
    "/api/v1/mutes/{mute_id}": "delete",
}


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


def test_task_registry_is_the_one_list_of_tasks() -> None:
    """Every wire task has one spec, and every table of tasks is that registry's."""
    names = tuple(spec.name for spec in REGISTRY)
    assert names == TASKS
    assert tuple(HANDLERS) == tuple(DATA_MODELS) == names
    assert set(PROMPTS) == {s.name for s in REGISTRY if s.prompt is not None}
    for spec in REGISTRY:
        assert inspect.iscoroutinefunction(spec.handler), spec.name
        assert spec.handler.__module__.startswith("loglytics.tasks."), spec.name
        assert HANDLERS[spec.name] is spec.handler
        assert DATA_MODELS[spec.name] is spec.output
        # A task without a prompt is answered without an LLM: it has a body-less GET route
        # and a structured reply; a task with a prompt is billed under its own name.
        if spec.prompt is None:
            assert spec.method == "GET" and spec.output is not None, spec.name
        else:
            assert spec.prompt.task == spec.name
            assert spec.method == "POST", spec.name


def test_task_registry_refuses_a_table_that_differs_from_the_wire_names() -> None:
    specs = list(REGISTRY)
    check_registry(specs, TASKS)
    with pytest.raises(ValueError, match="declares"):
        check_registry(specs[:-1], TASKS)  # a wire task without a handler
    with pytest.raises(ValueError, match="declares"):
        check_registry(specs, TASKS[:-1])  # a handler the wire does not name
    with pytest.raises(ValueError, match="declares"):
        check_registry([specs[1], specs[0], *specs[2:]], TASKS)
    lent = dataclasses.replace(specs[1], prompt=specs[0].prompt)
    with pytest.raises(ValueError, match="prompt of"):
        check_registry([specs[0], lent, *specs[2:]], TASKS)


def test_http_routes_cover_the_registry() -> None:
    """Each task at /api/v1/llm/<task> (GET for the info tasks; usage is /api/v1/users/me),
    plus an NDJSON stream for each task the registry streams over HTTP."""
    paths = build_app(cast(Backend, None)).openapi()["paths"]
    expected: dict[str, str] = {}
    for spec in REGISTRY:
        path = "/api/v1/users/me" if spec.name == "usage" else f"{API}/{spec.name}"
        expected[path] = spec.method.lower()
        if spec.http_stream:
            expected[f"{path}/stream"] = "post"
    expected.update(INCIDENT_ROUTES)  # not tasks: the gateway's incidents desk answers them
    assert {p: next(iter(ops)) for p, ops in paths.items()} == expected
    assert [p for p in paths if p.endswith("/stream")] == [f"{API}/chat/stream"]
