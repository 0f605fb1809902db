"""What Grafana and its ClickHouse plugin do to a panel's SQL before ClickHouse runs it.

Why a copy of their rules rather than strings written by hand: the dashboard test
must run the SQL the server would receive, so a panel that only works with the
macros expanded the way a test author imagined them fails here, not in Grafana.

Two steps, in the order they happen:

1. Grafana's frontend (`templateSrv.replace` with the plugin's `format`) replaces
   dashboard variables: `$name`, `${name}`, `${name:fmt}`, `[[name]]`. A single
   value goes in as it is; a multi-value variable (or "All") becomes
   `'a','b'` (CHDatasource.ts, `format`). Names it does not know, such as
   `$__timeFilter`, are left alone.
2. The plugin's backend expands its macros (pkg/macros/macros.go, applied by
   sqlds): `$__timeFilter(col)` becomes `col >= toDateTime(<from>) AND col <=
   toDateTime(<to>)`, `$__timeInterval(col)` becomes `toStartOfInterval(
   toDateTime(col), INTERVAL <n> second)` and so on. sqlds captures a macro's
   arguments up to the first `)`, so an argument with parentheses is refused here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

VariableValue = str | Sequence[str]

_VARIABLE = re.compile(
    r"\$(?P<plain>\w+)|\$\{(?P<braced>\w+)(?::[^}]*)?\}|\[\[(?P<bracket>\w+)(?::[^\]]*)?\]\]"
)
_MACRO = re.compile(r"\$__(?P<name>\w+)(?:\((?P<args>[^)]*)\))?")


class MacroError(ValueError):
    """A macro the plugin does not have, or called the way the plugin would refuse."""


@dataclass(frozen=True)
class QueryContext:
    """The dashboard state a query runs in: time range, interval and variable values."""

    start: datetime
    end: datetime
    interval_s: float
    variables: Mapping[str, VariableValue] = field(default_factory=dict)


def format_value(value: VariableValue) -> str:
    """The plugin's `format`: arrays become a quoted list, a single value stays raw."""
    if isinstance(value, str):
        return value
    return "'" + "','".join(value) + "'"


def replace_variables(sql: str, variables: Mapping[str, VariableValue]) -> str:
    """Grafana's `templateSrv.replace` for the variables given; unknown names stay."""

    def one(match: re.Match[str]) -> str:
        name = match.group("plain") or match.group("braced") or match.group("bracket")
        if name not in variables:
            return match.group(0)
        return format_value(variables[name])

    return _VARIABLE.sub(one, sql)


def _date_time(at: datetime) -> str:
    return f"toDateTime({int(at.timestamp())})"


def _date_time64(at: datetime) -> str:
    return f"fromUnixTimestamp64Milli({int(at.timestamp() * 1000)})"


def _date(at: datetime) -> str:
    return f"toDate('{at.strftime('%Y-%m-%d')}')"


def _between(column: str, low: str, high: str) -> str:
    return f"{column} >= {low} AND {column} <= {high}"


def _one_arg(name: str, args: list[str]) -> str:
    if len(args) != 1 or not args[0]:
        raise MacroError(f"$__{name} expects 1 argument, got {args}")
    return args[0]


def _macros(ctx: QueryContext) -> dict[str, Callable[[str, list[str]], str]]:
    """The plugin's macro table, bound to one query's time range and interval."""
    seconds = int(max(ctx.interval_s, 1))
    millis = int(max(ctx.interval_s * 1000, 1))
    start, end = ctx.start, ctx.end

    def date_time_filter(name: str, args: list[str]) -> str:
        if len(args) != 2:
            raise MacroError(f"$__{name} expects 2 arguments, got {args}")
        dates = _between(args[0], _date(start), _date(end))
        times = _between(args[1], _date_time(start), _date_time(end))
        return f"({dates}) AND ({times})"

    return {
        "fromTime": lambda n, a: _date_time(start),
        "toTime": lambda n, a: _date_time(end),
        "fromTime_ms": lambda n, a: _date_time64(start),
        "toTime_ms": lambda n, a: _date_time64(end),
        "timeFilter": lambda n, a: _between(_one_arg(n, a), _date_time(start), _date_time(end)),
        "timeFilter_ms": lambda n, a: _between(
            _one_arg(n, a), _date_time64(start), _date_time64(end)
        ),
        "dateFilter": lambda n, a: _between(_one_arg(n, a), _date(start), _date(end)),
        "dateTimeFilter": date_time_filter,
        "dt": date_time_filter,
        "timeInterval": lambda n, a: (
            f"toStartOfInterval(toDateTime({_one_arg(n, a)}), INTERVAL {seconds} second)"
        ),
        "timeInterval_ms": lambda n, a: (
            f"toStartOfInterval(toDateTime64({_one_arg(n, a)}, 3), INTERVAL {millis} millisecond)"
        ),
        "interval_s": lambda n, a: str(seconds),
    }


def expand_macros(sql: str, ctx: QueryContext) -> str:
    """The backend's macro expansion; an unknown `$__name` is an error, as in Grafana."""
    table = _macros(ctx)

    def one(match: re.Match[str]) -> str:
        name, raw = match.group("name"), match.group("args")
        if name not in table:
            raise MacroError(f"the ClickHouse plugin has no macro $__{name}")
        args = [] if raw is None else [a.strip() for a in raw.split(",")]
        if any("(" in a for a in args):
            raise MacroError(f"$__{name}: sqlds cuts arguments at the first ')': {raw!r}")
        return table[name](name, args)

    return _MACRO.sub(one, sql)


def render(sql: str, ctx: QueryContext) -> str:
    """The SQL ClickHouse receives for a panel query in this dashboard state."""
    out = expand_macros(replace_variables(sql, ctx.variables), ctx)
    if "$" in out or "[[" in out:
        raise MacroError(f"left unexpanded: {out}")
    return out


def grafana_interval(start: datetime, end: datetime, max_data_points: int = 1000) -> float:
    """Roughly Grafana's `$__interval`: the range over the data points, to whole seconds."""
    return float(max(1, math.ceil((end - start).total_seconds() / max_data_points)))
