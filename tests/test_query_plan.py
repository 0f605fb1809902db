"""The natural-language query layer: validation, compilation, and tenant isolation.

Isolation is checked against an oracle: every plan runs as tenant ``a`` on a
database holding tenants ``a`` and ``b`` and on one holding only ``a``'s identical
rows; the answers must match, and no value planted in ``b``'s rows (``zzB``
strings, numbers >= 5,000,000, the ``critical`` severity) may ever appear.
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from loglytics.schemas import Finding, TemplateCount, UsageRecord, WindowDigest
from loglytics.storage import ClickHouseSink, Client, TemplateRow, migrate, open_client
from loglytics.storage import plan as plan_mod
from loglytics.storage.plan import (
    SOURCES,
    Filter,
    PlanError,
    QueryPlan,
    TimeRange,
    compile_plan,
    run_plan,
)

NOW = datetime.now(UTC).replace(microsecond=0)
T0 = NOW.timestamp()
BIG = 5_000_000
INJECTIONS = [
    "' OR 1=1 --",
    "a' OR tenant = 'b",
    "tenant = 'b'",
    "1; DROP TABLE findings",
    "') UNION ALL SELECT * FROM findings --",
    "{tenant:String}",
]


def rows_for(tenant: str, sink: ClickHouseSink) -> None:
    """Tenant a: small, varied values. Tenant b: marked values everywhere."""
    b = tenant == "b"
    mark = "zzB-" if b else ""
    n_findings = 30 if b else 6
    sink.add_findings(
        [
            Finding(
                finding_id=f"{mark}{tenant}-f{i}",
                tenant=tenant,
                source=f"{mark}src{i % 2}",
                window_start=T0 - 600 * (i + 1),
                window_end=T0 - 600 * i - 60,
                kind="error" if i % 2 else "anomaly",
                category=f"{mark}cat{i % 3}",
                severity="critical" if b else ("low", "medium", "high")[i % 3],
                title=f"{mark}title {i}",
                summary=f"{mark}summary {i}",
                confidence=0.5,
                model_used=f"{mark}model",
                tokens_used=BIG + i if b else i * 10,
                latency_ms=float(BIG) if b else float(i),
                created_at=T0 - 10,
            )
            for i in range(n_findings)
        ]
    )
    for w in range(4 if b else 3):
        sink.add_window(
            WindowDigest(
                tenant=tenant,
                source=f"{mark}src0",
                window_start=T0 - 900 * (w + 1),
                window_end=T0 - 900 * w - 840,
                line_count=BIG if b else 20 + w,
                templates=[
                    TemplateCount(
                        template_id=f"{mark}t{k}",
                        template=f"{mark}template <*> {k}",
                        count=BIG if b else k + w,
                        level=f"{mark}ERROR" if k else f"{mark}INFO",
                        new=k == 2,
                    )
                    for k in range(3)
                ],
                flagged_lines=BIG if b else w,
                closed_by=f"{mark}watermark",
            )
        )
    sink.add_templates(
        [
            TemplateRow(
                tenant=tenant,
                source=f"{mark}src0",
                template_id=f"{mark}t{k}",
                template=f"{mark}template <*> {k}",
                level=f"{mark}ERROR",
                first_seen=T0 - 3600 * (k + 1),
                last_seen=T0 - 60 * k,
                count=BIG if b else 10 * k,
            )
            for k in range(3)
        ]
    )
    _usage_for(tenant, sink)


def _usage_for(tenant: str, sink: ClickHouseSink) -> None:
    """LLM usage rows for ``rows_for``: small values for a, marked ones for b."""
    b = tenant == "b"
    mark = "zzB-" if b else ""
    for i in range(12 if b else 5):
        sink.add_usage(
            UsageRecord(
                tenant=tenant,
                tier=f"{mark}free",
                task=f"{mark}chat",
                provider=f"{mark}llamacpp",
                model=f"{mark}m{i % 2}",
                prompt_tokens=BIG if b else 10 + i,
                completion_tokens=BIG if b else i,
                estimated=bool(i % 2),
                cached=i == 3,
                latency_ms=float(BIG) if b else 5.0 * i,
                ts=T0 - 1800 * i - 30,
                request_id=f"{mark}r{i}",
            )
        )


def _fill(client: Client, tenants: tuple[str, ...]) -> None:
    async def go() -> None:
        sink = ClickHouseSink(client, flush_interval_ms=20)
        await sink.start()
        for t in tenants:
            rows_for(t, sink)
        await sink.stop(timeout=20)

    asyncio.run(go())


@pytest.fixture(scope="module")
def dbs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Client, Client]]:
    """(database with tenants a and b, database with only a's identical rows)."""
    path: Path = tmp_path_factory.mktemp("chdb-plan")
    suffix = uuid.uuid4().hex[:8]
    mixed = open_client(f"chdb://{path}?database=mixed_{suffix}")
    only_a = open_client(f"chdb://{path}?database=only_a_{suffix}")
    try:
        for client, tenants in ((mixed, ("a", "b")), (only_a, ("a",))):
            migrate(client)
            _fill(client, tenants)
        yield mixed, only_a
    finally:
        mixed.close()
        only_a.close()


def _norm(rows: list[dict[str, Any]]) -> list[bytes]:
    def fix(v: Any) -> Any:
        return round(v, 6) if isinstance(v, float) and math.isfinite(v) else v

    return sorted(orjson.dumps({k: fix(v) for k, v in r.items()}) for r in rows)


def assert_isolated(dbs: tuple[Client, Client], plan: QueryPlan) -> list[dict[str, Any]]:
    mixed, only_a = dbs
    got = run_plan(mixed, plan, "a", now=NOW)
    for row in got.rows:
        for key, value in row.items():
            assert "zzB" not in str(value), (plan, row)
            assert value != "critical", (plan, row)
            if isinstance(value, int | float) and not isinstance(value, bool):
                assert value < BIG, (plan, key, row)
    if len(got.rows) < plan.limit:  # no LIMIT tie-breaking: the answers must be equal
        expected = run_plan(only_a, plan, "a", now=NOW)
        assert _norm(got.rows) == _norm(expected.rows), (plan, got.sql)
    return got.rows


# -- compilation --------------------------------------------------------------------------


def test_tenant_is_always_a_parameter_the_plan_cannot_set() -> None:
    for source in SOURCES:
        sql, params = compile_plan(QueryPlan(source=source), "tenant-a")
        assert " WHERE tenant = {tenant:String} AND " in sql
        assert params["tenant"] == "tenant-a"
        assert "LIMIT 20 SETTINGS" in sql and "readonly = 1" in sql
    with pytest.raises(ValidationError):
        QueryPlan(source="findings", filters=[Filter(column="tenant", value="b")])
    with pytest.raises(ValidationError):
        QueryPlan.model_validate({"source": "findings", "group_by": ["tenant"]})
    with pytest.raises(PlanError):
        compile_plan(QueryPlan(source="findings"), "")
    with pytest.raises(PlanError):
        compile_plan(QueryPlan(source="findings"), "x" * 65)


def test_values_are_parameters_never_sql() -> None:
    plan = QueryPlan(
        source="findings",
        filters=[Filter(column="title", op=op, value=v) for v, op in zip(
            INJECTIONS[:4], ["=", "contains", "!=", "="], strict=True
        )] + [Filter(column="category", op="in", value=INJECTIONS)],
    )  # fmt: skip
    sql, params = compile_plan(plan, "a")
    for text in INJECTIONS[:-1]:  # the last one is the tenant placeholder's own spelling
        assert text not in sql
    assert INJECTIONS in params.values()
    assert sql.count("{tenant:String}") == 1


@pytest.mark.parametrize(
    "bad",
    [
        {"source": "system.tables"},
        {"source": "findings; DROP TABLE findings"},
        {"source": "findings", "filters": [{"column": "tenant", "value": "b"}]},
        {"source": "findings", "filters": [{"column": "template", "value": "x"}]},
        {"source": "findings", "filters": [{"column": "title", "op": "LIKE", "value": "x"}]},
        {"source": "findings", "filters": [{"column": "title", "value": "x" * 257}]},
        {"source": "findings", "filters": [{"column": "title", "op": ">", "value": "x"}]},
        {"source": "findings", "filters": [{"column": "confidence", "op": "contains",
                                            "value": "1"}]},
        {"source": "findings", "filters": [{"column": "confidence", "value": "1 OR 1=1"}]},
        {"source": "findings", "filters": [{"column": "title", "op": "in", "value": "x"}]},
        {"source": "findings", "filters": [{"column": "title", "op": "in", "value": ["x"] * 21}]},
        {"source": "findings", "filters": [{"column": "window_start", "value": "yesterday"}]},
        {"source": "findings", "filters": [{"column": "title", "value": "x"}] * 9},
        {"source": "findings", "limit": 101},
        {"source": "findings", "limit": 0},
        {"source": "findings", "sql": "SELECT 1"},
        {"source": "findings", "columns": ["evidence"]},
        {"source": "findings", "group_by": ["severity"]},
        {"source": "findings", "aggregate": "count", "group_by": ["kind", "severity", "source",
                                                                 "category"]},
        {"source": "findings", "aggregate": "count", "group_by": ["kind", "kind"]},
        {"source": "findings", "aggregate": "sum", "metric_column": "title"},
        {"source": "findings", "aggregate": "sum"},
        {"source": "findings", "aggregate": "count", "order_by": "title"},
        {"source": "findings", "order_by": "template"},
        {"source": "findings", "time_range": {"last_hours": 1, "since": "2024-01-01T00:00:00"}},
        {"source": "findings", "time_range": {"last_hours": 10**6}},
        {"source": "findings", "time_range": {"since": "0904-01-21T02:10:13+12:03"}},
        {"source": "findings", "time_range": {"since": "2024-01-01", "until": "9999-12-31"}},
        {"source": "findings", "filters": [{"column": "window_start", "value": "0001-01-01"}]},
        {"source": "findings", "filters": [{"column": "window_start", "value": -1e12}]},
    ],
)  # fmt: skip
def test_validation_rejects(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        QueryPlan.model_validate(bad)


def test_json_schema_bounds_every_string_and_list() -> None:
    schema = QueryPlan.model_json_schema()
    seen = {"string": 0, "array": 0}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            kind = node.get("type")
            if kind == "string" and "enum" not in node and "const" not in node:
                assert "maxLength" in node, node
                seen["string"] += 1
            if kind == "array":
                assert "maxItems" in node, node
                seen["array"] += 1
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    assert seen["string"] >= 3 and seen["array"] >= 4
    assert schema["properties"]["limit"]["maximum"] == 100


# -- running against chdb -----------------------------------------------------------------

CURATED = [
    QueryPlan(source="findings"),
    QueryPlan(source="findings", limit=100, time_range=TimeRange(last_hours=9000)),
    QueryPlan(source="findings", aggregate="count", group_by=["severity"]),
    QueryPlan(source="findings", aggregate="sum", metric_column="tokens_used", group_by=["kind"]),
    QueryPlan(source="findings", filters=[Filter(column="title", op="contains", value="zzB")]),
    QueryPlan(source="findings", filters=[Filter(column="source", op="in", value=["zzB-src0"])]),
    *[
        QueryPlan(source="findings", filters=[Filter(column=c, value=v)])
        for c in ("title", "category", "finding_id")
        for v in INJECTIONS
    ],
    QueryPlan(source="window_stats", aggregate="sum", metric_column="count",
              group_by=["template_id"]),
    QueryPlan(source="windows", aggregate="max", metric_column="line_count"),
    QueryPlan(source="templates", time_range=TimeRange(last_hours=48)),
    QueryPlan(source="llm_usage", aggregate="sum", metric_column="prompt_tokens",
              group_by=["model", "cached"], time_range=TimeRange(last_hours=48)),
    QueryPlan(source="v_findings_hourly", aggregate="sum", metric_column="findings",
              group_by=["severity"]),
    QueryPlan(source="v_top_templates", order_by="total", limit=5),
    QueryPlan(source="v_new_templates", time_range=TimeRange(last_hours=5)),
    QueryPlan(source="v_tokens_daily", time_range=TimeRange(since=NOW - timedelta(days=3))),
    QueryPlan(source="v_usage_daily", aggregate="avg", metric_column="total_tokens"),
]  # fmt: skip


@pytest.mark.parametrize("plan", CURATED, ids=lambda p: p.source)
def test_curated_plans_never_see_other_tenants(dbs: tuple[Client, Client], plan: QueryPlan) -> None:
    assert_isolated(dbs, plan)


def test_aggregates_are_right(dbs: tuple[Client, Client]) -> None:
    rows = assert_isolated(
        dbs, QueryPlan(source="findings", aggregate="count", group_by=["severity"],
                       order_by="severity", descending=False)
    )  # fmt: skip
    assert rows == [
        {"severity": "high", "value": 2},
        {"severity": "low", "value": 2},
        {"severity": "medium", "value": 2},
    ]
    usage = assert_isolated(
        dbs, QueryPlan(source="v_tokens_daily", aggregate="sum", metric_column="total_tokens",
                       time_range=TimeRange(last_hours=72))
    )  # fmt: skip
    assert usage == [{"value": sum(10 + i + i for i in range(5))}]
    assert run_plan(dbs[0], QueryPlan(source="findings", aggregate="count"), "b").rows == [
        {"value": 30}
    ]


def test_results_are_bounded_in_code(
    dbs: tuple[Client, Client], monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = QueryPlan(source="findings", limit=100, time_range=TimeRange(last_hours=48))
    full = run_plan(dbs[0], plan, "a")
    assert len(full.rows) == 6 and not full.truncated
    monkeypatch.setattr(plan_mod, "MAX_RESULT_BYTES", 700)
    cut = run_plan(dbs[0], plan, "a")
    assert cut.truncated and 0 < len(cut.rows) < 6
    monkeypatch.setattr(plan_mod, "MAX_CELL_CHARS", 3)
    cell = run_plan(dbs[0], QueryPlan(source="findings", columns=["title"], limit=1), "a")
    assert cell.truncated and cell.rows[0]["title"] == "tit…"


# -- property: any valid plan stays inside its tenant -------------------------------------

_ISO = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)
)
_TEXT = st.one_of(
    st.sampled_from(["src0", "zzB-src0", "title 1", "zzB", "low", "critical", "m1", "t1", ""]),
    st.sampled_from(INJECTIONS),
    st.text(max_size=12),
)


def _value(kind: str) -> st.SearchStrategy[Any]:
    if kind == "str":
        return _TEXT
    if kind == "num":
        return st.one_of(st.integers(-5, 2 * BIG), st.floats(-10, 2 * BIG, allow_nan=False))
    if kind == "bool":
        return st.booleans()
    return st.one_of(_ISO.map(lambda d: d.isoformat()), st.floats(T0 - 10 * 86400, T0 + 86400))


@st.composite
def plans(draw: st.DrawFn) -> QueryPlan:
    source = draw(st.sampled_from(sorted(SOURCES)))
    spec = SOURCES[source]
    cols = sorted(spec.columns)
    filters = []
    for _ in range(draw(st.integers(0, 3))):
        col = draw(st.sampled_from(cols))
        kind = spec.columns[col]
        ops = ["=", "!=", "in"] + (["contains"] if kind == "str" else [])
        ops += ["<", "<=", ">", ">="] if kind in ("num", "time", "date") else []
        op = draw(st.sampled_from(ops))
        value = draw(st.lists(_value(kind), min_size=1, max_size=3) if op == "in" else _value(kind))
        filters.append({"column": col, "op": op, "value": value})
    aggregate = draw(st.sampled_from(["none", "none", "count", "sum", "avg", "min", "max"]))
    data: dict[str, Any] = {
        "source": source,
        "filters": filters,
        "aggregate": aggregate,
        "limit": draw(st.integers(1, 100)),
        "descending": draw(st.booleans()),
        "time_range": draw(
            st.one_of(
                st.builds(dict, last_hours=st.integers(1, 9600)),
                st.builds(dict, since=_ISO.map(lambda d: d.isoformat())),
                st.builds(dict, since=_ISO, until=_ISO),
            )
        ),
    }
    if aggregate == "none":
        data["columns"] = draw(st.lists(st.sampled_from(cols), max_size=4, unique=True))
        data["order_by"] = draw(st.one_of(st.none(), st.sampled_from(cols)))
    else:
        data["group_by"] = draw(st.lists(st.sampled_from(cols), max_size=3, unique=True))
        if aggregate != "count":
            allowed = ("num",) if aggregate in ("sum", "avg") else ("num", "time", "date")
            metrics = [c for c in cols if spec.columns[c] in allowed]
            assume(metrics)
            data["metric_column"] = draw(st.sampled_from(metrics))
        data["order_by"] = draw(st.one_of(st.none(), st.sampled_from([*data["group_by"], "value"])))
    try:
        return QueryPlan.model_validate(data)
    except ValidationError:
        assume(False)
        raise


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(plan=plans())
def test_random_plans_never_see_other_tenants(dbs: tuple[Client, Client], plan: QueryPlan) -> None:
    rows = assert_isolated(dbs, plan)
    event(f"{'some' if rows else 'no'} rows")
    # And it round-trips through JSON, as it would coming from the model.
    assert QueryPlan.model_validate_json(plan.model_dump_json()) == plan


def test_rows_are_json_ready(dbs: tuple[Client, Client]) -> None:
    rows = run_plan(dbs[0], QueryPlan(source="llm_usage", time_range=TimeRange(last_hours=48)),
                    "a").rows  # fmt: skip
    assert rows and orjson.loads(orjson.dumps(rows)) == rows
    assert time.time() > 0
