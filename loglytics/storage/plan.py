"""The safe natural-language query layer: the LLM fills a `QueryPlan`, never SQL.

Why a plan instead of generated SQL: a model that writes SQL can be talked into
reading another tenant's rows, running expensive scans, or calling table
functions (``file()``, ``url()``). Here the model only picks from closed sets:

* ``source`` and every column come from allow-lists (`Literal` types, so the JSON
  schema handed to the model lists them), checked again per source by validation;
  identifiers in the SQL are copied from those lists, never from plan strings.
* Values are always server-side query parameters (``{p0:String}``), never SQL.
* ``tenant`` is not a plan column at all: `compile_plan` adds
  ``tenant = {tenant:String}`` itself, from the authenticated caller.
* Results are bounded twice: ``LIMIT <= 100`` plus ``SETTINGS`` limits in the SQL
  (``readonly=1`` stops writes, DDL and table functions), and row, cell and byte
  caps in `run_plan`, because ``result_overflow_mode='break'`` only cuts whole blocks.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from types import MappingProxyType
from typing import TYPE_CHECKING, Annotated, Any, Literal, Self

import orjson
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    WithJsonSchema,
    model_validator,
)

from loglytics.schemas.base import EARLIEST, LATEST
from loglytics.storage import registry, tables
from loglytics.storage.client import Client
from loglytics.storage.registry import Kind

__all__ = [
    "MAX_CELL_CHARS",
    "MAX_LIMIT",
    "MAX_RESULT_BYTES",
    "SOURCES",
    "Filter",
    "PlanError",
    "QueryPlan",
    "QueryResult",
    "SourceSpec",
    "TimeRange",
    "catalog",
    "compile_plan",
    "run_plan",
]

MAX_LIMIT = 100
MAX_RESULT_BYTES = 256 * 1024
MAX_CELL_CHARS = 2000
MAX_EXECUTION_SECONDS = 10
MAX_LOOKBACK_HOURS = 24 * 400


@dataclass(frozen=True)
class SourceSpec:
    """A readable table or view: its time column, columns and whether it needs FINAL."""

    time_column: str
    columns: Mapping[str, Kind]
    final: bool = False
    default_columns: tuple[str, ...] = ()

    def select_columns(self) -> tuple[str, ...]:
        return self.default_columns or tuple(self.columns)


def _spec(source: registry.Source) -> SourceSpec:
    """The planner's allow-list entry for a registered source (its readable columns only).

    The tenant column is the one the compiler filters on itself: a source without
    one, or one that lets a plan read or filter it, would break isolation.
    """
    names = {c.name: c for c in source.columns}
    if "tenant" not in names or names["tenant"].readable:
        raise ValueError(f"{source.name}: needs a tenant column the planner cannot read")
    if source.planner is None:
        raise ValueError(f"{source.name} is not declared readable by the planner")
    return SourceSpec(
        source.planner.time_column,
        MappingProxyType({c.name: c.planner_kind for c in source.columns if c.readable}),
        final=source.needs_final,
        default_columns=source.planner.default_columns,
    )


SOURCES: Mapping[str, SourceSpec] = MappingProxyType(
    {source.name: _spec(source) for source in tables.planner_sources()}
)


def _column_names() -> tuple[str, ...]:
    """Every readable column of any source, in first-seen order (the plan's column enum)."""
    return tuple(dict.fromkeys(c for spec in SOURCES.values() for c in spec.columns))


if TYPE_CHECKING:  # the closed sets below are computed, so type checkers see plain text
    Source = str
    Column = str
else:  # Literal types, so the JSON schema handed to the model lists them
    Source = Literal[tuple(SOURCES)]
    Column = Literal[_column_names()]

Op = Literal["=", "!=", "<", "<=", ">", ">=", "contains", "in"]
Aggregate = Literal["count", "sum", "avg", "min", "max", "none"]
Text = Annotated[str, Field(max_length=256)]
Scalar = Text | int | float | bool


def storable(value: datetime) -> datetime:
    """`value` if ClickHouse's DateTime64 can hold it (1900 to 2299, in UTC).

    Why here: a moment outside that range is refused by the server as a bad query
    parameter, which would reach the caller as an internal error instead of a
    message about the field they gave.
    """
    if not EARLIEST <= _utc(value) <= LATEST:
        raise ValueError(f"a time between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d} (UTC)")
    return value


Moment = Annotated[
    datetime,
    AfterValidator(storable),
    WithJsonSchema({"type": "string", "format": "date-time", "maxLength": 40}),
]


class PlanError(ValueError):
    """A plan that validated but cannot be compiled (or a bad tenant)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Filter(_Strict):
    """``column op value``; ``value`` is always sent as a query parameter."""

    column: Column
    op: Op = "="
    value: Scalar | Annotated[list[Scalar], Field(max_length=20)]


class TimeRange(_Strict):
    """Either the last N hours or an explicit ``since`` (and optional ``until``), UTC."""

    last_hours: int | None = Field(None, ge=1, le=MAX_LOOKBACK_HOURS)
    since: Moment | None = None
    until: Moment | None = None

    @model_validator(mode="after")
    def _one_start(self) -> Self:
        if self.last_hours is not None and self.since is not None:
            raise ValueError("give last_hours or since, not both")
        return self

    def bounds(self, now: datetime) -> tuple[datetime, datetime | None]:
        """(inclusive start, exclusive end or None) as aware UTC datetimes."""
        until = _utc(self.until) if self.until else None
        if self.since is not None:
            return _utc(self.since), until
        return now - timedelta(hours=self.last_hours or 24), until


class QueryPlan(_Strict):
    """What the model may ask for. Its JSON schema is the model's output schema."""

    source: Source
    columns: list[Column] = Field(default_factory=list, max_length=12)
    filters: list[Filter] = Field(default_factory=list, max_length=8)
    time_range: TimeRange = Field(default_factory=TimeRange)
    group_by: list[Column] = Field(default_factory=list, max_length=3)
    aggregate: Aggregate = "none"
    metric_column: Column | None = None
    order_by: Column | Literal["value"] | None = None
    descending: bool = True
    limit: int = Field(20, ge=1, le=MAX_LIMIT)

    @model_validator(mode="after")
    def _check(self) -> Self:
        spec = SOURCES[self.source]
        cols = spec.columns

        def allowed(column: str, what: str) -> Kind:
            if column not in cols:
                raise ValueError(f"{what} {column!r} is not a column of {self.source}")
            return cols[column]

        for c in self.columns:
            allowed(c, "column")
        for g in self.group_by:
            allowed(g, "group_by")
        if len(set(self.group_by)) != len(self.group_by):
            raise ValueError("group_by has duplicates")
        for f in self.filters:
            _check_filter(f, allowed(f.column, "filter column"))
        if self.aggregate == "none":
            if self.group_by:
                raise ValueError("group_by needs an aggregate")
            if self.metric_column is not None:
                raise ValueError("metric_column needs an aggregate other than none/count")
            if self.order_by is not None:
                allowed(self.order_by, "order_by")
        else:
            if self.columns:
                raise ValueError("columns are for aggregate=none; use group_by")
            if self.aggregate == "count":
                if self.metric_column is not None:
                    raise ValueError("count takes no metric_column")
            else:
                if self.metric_column is None:
                    raise ValueError(f"{self.aggregate} needs a metric_column")
                kind = allowed(self.metric_column, "metric_column")
                ok: tuple[Kind, ...] = ("num",) if self.aggregate in ("sum", "avg") else (
                    "num", "time", "date",
                )  # fmt: skip
                if kind not in ok:
                    raise ValueError(f"{self.aggregate} of {kind} column {self.metric_column!r}")
            if self.order_by is not None and self.order_by not in (*self.group_by, "value"):
                raise ValueError("with an aggregate, order_by must be 'value' or a group_by column")
        return self


def _check_filter(f: Filter, kind: Kind) -> None:
    values = f.value if isinstance(f.value, list) else [f.value]
    if f.op == "in":
        if not isinstance(f.value, list) or not f.value:
            raise ValueError(f"'in' on {f.column!r} needs a non-empty list")
    elif isinstance(f.value, list):
        raise ValueError(f"{f.op!r} on {f.column!r} takes one value, not a list")
    if f.op == "contains" and kind != "str":
        raise ValueError(f"'contains' needs a text column, {f.column!r} is {kind}")
    if f.op in ("<", "<=", ">", ">=") and kind not in ("num", "time", "date"):
        raise ValueError(f"{f.op!r} needs a number or time column, {f.column!r} is {kind}")
    for v in values:
        _coerce(v, kind, f.column)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _coerce(value: Any, kind: Kind, column: str) -> Any:
    """A plan value as the Python type the column's parameter takes, or ValueError."""
    if kind == "str":
        if not isinstance(value, str):
            raise ValueError(f"{column!r} takes text")
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"{column!r} takes true/false")
        return value
    if kind == "num":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{column!r} takes a number")
        return value
    # time / date: ISO text or epoch seconds
    try:
        if isinstance(value, bool):
            raise TypeError
        moment = (
            datetime.fromtimestamp(float(value), tz=UTC)
            if isinstance(value, int | float)
            else _utc(datetime.fromisoformat(value))
        )
        storable(moment)
    except (TypeError, ValueError, OverflowError, OSError):
        raise ValueError(
            f"{column!r} takes an ISO-8601 time or epoch seconds between"
            f" {EARLIEST:%Y} and {LATEST:%Y}"
        ) from None
    return moment.date() if kind == "date" else moment


_PARAM_TYPE: dict[Kind, str] = {
    "str": "String",
    "num": "Float64",
    "bool": "Bool",
    "time": "DateTime64(3, 'UTC')",
    "date": "Date",
}
_SQL_OP = {"=": "=", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
_AGG_SQL = {"sum": "sum", "avg": "avg", "min": "min", "max": "max"}


def _settings_clause(limit: int, readonly: bool) -> str:
    parts = [
        f"max_result_rows = {limit}",
        f"max_result_bytes = {MAX_RESULT_BYTES}",
        "result_overflow_mode = 'break'",
        f"max_execution_time = {MAX_EXECUTION_SECONDS}",
    ]
    if readonly:
        parts.append("readonly = 1")
    return " SETTINGS " + ", ".join(parts)


def compile_plan(
    plan: QueryPlan, tenant: str, *, now: datetime | None = None, readonly: bool = True
) -> tuple[str, dict[str, Any]]:
    """Parameterised SQL for ``plan`` restricted to ``tenant``.

    ``readonly=False`` is for a server whose query user is already read-only
    (profile ``readonly=1`` forbids changing any setting, including ``readonly``).
    """
    if not tenant or len(tenant) > 64:
        raise PlanError("tenant must be 1..64 characters")
    spec = SOURCES[plan.source]
    params: dict[str, Any] = {"tenant": tenant}

    def param(value: Any, kind: Kind, many: bool = False) -> str:
        name = f"p{len(params)}"
        params[name] = value
        ptype = _PARAM_TYPE[kind]
        return f"{{{name}:{f'Array({ptype})' if many else ptype}}}"

    if plan.aggregate == "none":
        select = [_ident(spec, c) for c in plan.columns or spec.select_columns()]
    else:
        metric = (
            "count()"
            if plan.aggregate == "count"
            else f"{_AGG_SQL[plan.aggregate]}({_ident(spec, plan.metric_column)})"
        )
        select = [*(_ident(spec, g) for g in plan.group_by), f"{metric} AS value"]

    where = ["tenant = {tenant:String}"]
    time_col = spec.time_column
    time_kind = spec.columns[time_col]
    start, end = plan.time_range.bounds(_utc(now or datetime.now(UTC)))
    where.append(f"{time_col} >= {param(_as_kind(start, time_kind), time_kind)}")
    if end is not None:
        where.append(f"{time_col} < {param(_as_kind(end, time_kind), time_kind)}")
    for f in plan.filters:
        col = _ident(spec, f.column)
        kind = spec.columns[col]
        if f.op == "contains":
            where.append(f"positionCaseInsensitiveUTF8({col}, {param(f.value, 'str')}) > 0")
        elif f.op == "in":
            values = f.value if isinstance(f.value, list) else [f.value]
            coerced = [_coerce(v, kind, col) for v in values]
            # IN does not convert DateTime to DateTime64 (views yield DateTime): cast explicitly.
            lhs = f"toDateTime64({col}, 3, 'UTC')" if kind == "time" else col
            where.append(f"{lhs} IN {param(coerced, kind, many=True)}")
        else:
            where.append(f"{col} {_SQL_OP[f.op]} {param(_coerce(f.value, kind, col), kind)}")

    sql = f"SELECT {', '.join(select)} FROM {plan.source}"
    if spec.final:
        sql += " FINAL"
    sql += " WHERE " + " AND ".join(where)
    if plan.aggregate != "none" and plan.group_by:
        sql += " GROUP BY " + ", ".join(_ident(spec, g) for g in plan.group_by)
    order = plan.order_by or ("value" if plan.aggregate != "none" else time_col)
    order_sql = "value" if order == "value" and plan.aggregate != "none" else _ident(spec, order)
    sql += f" ORDER BY {order_sql} {'DESC' if plan.descending else 'ASC'}"
    limit = max(1, min(plan.limit, MAX_LIMIT))
    sql += f" LIMIT {limit}" + _settings_clause(limit, readonly)
    return sql, params


def _as_kind(moment: datetime, kind: Kind) -> date | datetime:
    return moment.date() if kind == "date" else moment


def _ident(spec: SourceSpec, column: str | None) -> str:
    """An identifier for SQL: only ever a key of the source's allow-list."""
    if column is None or column not in spec.columns:
        raise PlanError(f"column {column!r} is not allowed")
    return column


@dataclass(frozen=True)
class QueryResult:
    """Bounded rows (JSON-ready values), the SQL that produced them, and whether cut."""

    rows: list[dict[str, Any]]
    sql: str
    truncated: bool


def _jsonable(value: Any) -> tuple[Any, bool]:
    if isinstance(value, float) and not math.isfinite(value):
        return None, False  # avg() of no rows is nan; JSON has no nan
    if isinstance(value, datetime):
        return _utc(value).isoformat(), False
    if isinstance(value, date):
        return value.isoformat(), False
    if isinstance(value, str) and len(value) > MAX_CELL_CHARS:
        return value[:MAX_CELL_CHARS] + "…", True
    return value, False


def run_plan(
    client: Client,
    plan: QueryPlan,
    tenant: str,
    *,
    now: datetime | None = None,
    readonly: bool = True,
) -> QueryResult:
    """Compile and run ``plan`` as ``tenant``; rows, cells and bytes are capped in code too."""
    sql, params = compile_plan(plan, tenant, now=now, readonly=readonly)
    result = client.query(sql, parameters=params)
    rows: list[dict[str, Any]] = []
    size = 0
    truncated = False
    for raw in result.named_results():
        if len(rows) >= plan.limit:
            truncated = True
            break
        row: dict[str, Any] = {}
        for key, value in raw.items():
            row[key], cut = _jsonable(value)
            truncated = truncated or cut
        size += len(orjson.dumps(row, default=str))
        if size > MAX_RESULT_BYTES:
            truncated = True
            break
        rows.append(row)
    return QueryResult(rows=rows, sql=sql, truncated=truncated)


def catalog() -> dict[str, dict[str, str]]:
    """Sources and their columns with kinds, for the planning prompt."""
    return {name: dict(spec.columns) for name, spec in SOURCES.items()}
