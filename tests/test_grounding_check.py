"""The one grounding check and what tasks do with it, on scripted model outputs (no services).

A scripted pool answers each call with the next output of a list, so each case
pins one path: grounded on the first try, repaired, or fallen back to the
rules' answer with `grounded` false; figures always computed from the entries.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

import pytest
from prometheus_client import CollectorRegistry
from pydantic import BaseModel

from loglytics.prompts.detect_errors import ErrorPick, ErrorPicks
from loglytics.prompts.grounding import Ground, GroundingMetrics, identifiers, numbers, strings_of
from loglytics.prompts.summarize import SummaryNotes
from loglytics.providers import InvalidOutput, LLMPool, PoolResult
from loglytics.schemas import LLMRequest, TokenUsage
from loglytics.tasks.base import Storage, TaskContext
from loglytics.tasks.detect_anomalies import detect_anomalies
from loglytics.tasks.detect_errors import detect_errors

BENIGN = ["2024-06-01 08:00:00 INFO gw-3: health check ok", "INFO auth: user u-19 signed in"]
ERRORS = [
    *["ERROR billing-api: charge c-881 failed: card declined"] * 3,
    "WARN billing-api: retry queue at 80%",
    "INFO billing-api: charge c-882 ok",
]


def test_identifiers_numbers_and_copied_phrases() -> None:
    text = "orders-db refuses connections; /var almost full, e.g. worker-7 on 10.0.0.1:8080"
    assert identifiers(text) == ["orders-db", "/var", "worker-7", "10.0.0.1:8080"]
    assert numbers("at 05 and 9.8s, x12") == {"5", "9.8", "12"}
    ground = Ground.of("ERROR api: timeout calling peer-2", ["calling the bank gateway failed"])
    assert ground.check(["peer-2 timed out"]) == ()
    kinds = {f.kind for f in ground.check(["orders-db: calling the bank gateway"], [3])}
    assert kinds == {"identifier", "example_text", "index"}
    # A phrase the input has itself is not a copy, even if the example has it too.
    own = Ground.of("calling the bank gateway failed", ["calling the bank gateway failed"])
    assert own.check(["calling the bank gateway failed"]) == ()


def test_closed_list_fields_are_choices_not_writing() -> None:
    pick = ErrorPick(entries=[0], category="database", severity="high", message="m")
    assert strings_of(pick) == ["m"]


class Scripted:
    """A pool stand-in: each call returns the next scripted output (an exception is raised)."""

    def __init__(self, outputs: list[BaseModel | Exception]) -> None:
        self.outputs: Iterator[BaseModel | Exception] = iter(outputs)
        self.calls: list[dict[str, Any]] = []

    async def complete(self, **kw: Any) -> PoolResult:
        self.calls.append(kw)
        out = next(self.outputs)
        if isinstance(out, Exception):
            raise out
        return PoolResult(
            text=out.model_dump_json(),
            data=out,
            usage=TokenUsage(prompt_tokens=100, completion_tokens=20),
            provider="fake",
            model="fake-model",
            latency_ms=1.0,
        )


def context(
    task: str, entries: list[str], pool: Scripted, registry: CollectorRegistry
) -> TaskContext:
    request = LLMRequest(
        request_id="r1", tenant="t", api_key="k", task=task, input={"entries": entries}
    )
    return TaskContext(
        request=request,
        tier="free",
        pool=cast(LLMPool, pool),
        storage=cast(Storage, None),
        grounding=GroundingMetrics(registry),
    )


def counted(registry: CollectorRegistry, task: str, outcome: str) -> float:
    labels = {"task": task, "provider": "fake", "outcome": outcome}
    return registry.get_sample_value("loglytics_grounding_outputs_total", labels) or 0.0


def picks(*groups: tuple[list[int], str], summary: str = "Charges fail.") -> ErrorPicks:
    return ErrorPicks(
        groups=[
            ErrorPick(entries=refs, category="application", severity="high", message=message)
            for refs, message in groups
        ],
        summary=summary,
    )


async def test_benign_input_has_no_error_groups_and_no_call() -> None:
    pool, registry = Scripted([]), CollectorRegistry()
    result = await detect_errors(context("detect-errors", BENIGN, pool, registry))
    assert result.data == {
        "errors": [],
        "total_errors": 0,
        "summary": "No errors in the entries.",
        "grounded": True,
    }
    assert pool.calls == [] and result.grounded is None


async def test_counts_come_from_the_entries_not_the_model() -> None:
    pool, registry = Scripted([picks(([0], "billing-api charges fail"))]), CollectorRegistry()
    result = await detect_errors(context("detect-errors", ERRORS, pool, registry))
    assert result.data is not None and result.grounded is True
    (group,) = result.data["errors"]
    assert group["count"] == 3 and result.data["total_errors"] == 3
    assert group["lines"] == [ERRORS[0]]
    assert counted(registry, "detect-errors", "first_try") == 1


async def test_a_copied_example_is_repaired_once_then_falls_back() -> None:
    copied = picks(([0], "orders-db refuses connections"), summary="Database connections fail.")
    repaired = picks(([0, 1], "charge c-881 failed"))
    pool, registry = Scripted([copied, repaired]), CollectorRegistry()
    result = await detect_errors(context("detect-errors", ERRORS, pool, registry))
    assert result.grounded is True and counted(registry, "detect-errors", "repaired") == 1
    note = pool.calls[1]["messages"][-1]["content"]
    assert "'orders-db' does not occur in the input" in note
    assert result.data is not None and result.data["total_errors"] == 4

    pool, registry = Scripted([copied, copied]), CollectorRegistry()
    result = await detect_errors(context("detect-errors", ERRORS, pool, registry))
    assert result.grounded is False and result.data is not None
    assert counted(registry, "detect-errors", "fell_back") == 1
    text = str(result.data)
    assert "store-q9" not in text and "cache-z3" not in text
    assert "orders-db" not in text and result.data["total_errors"] == 4
    assert result.data["grounded"] is False


async def test_an_invalid_output_falls_back_to_the_rules() -> None:
    pool, registry = Scripted([InvalidOutput("bad json")]), CollectorRegistry()
    result = await detect_anomalies(context("detect-anomalies", ERRORS, pool, registry))
    assert result.grounded is False and result.data is not None
    assert all(line in ERRORS for a in result.data["anomalies"] for line in a["lines"])


@pytest.mark.parametrize("headline", ["2 findings in payments", "45 lines flagged"])
def test_summary_notes_are_held_to_the_metrics(headline: str) -> None:
    ground = Ground.of("lines: 120 in 4 windows (flagged lines: 3)\nfindings: 0", [])
    notes = SummaryNotes(headline=headline, highlights=[])
    assert ground.check(strings_of(notes))
