"""The shapes of the table registry: `Column`, `Table`, `View`, and what is derived from them.

Why a registry rather than DDL text: a table's columns used to be written four
times by hand (a column tuple, the CREATE statement, the sink's positional row
tuples and the query planner's allow-list), and nothing noticed when one of them
drifted. Here a table is declared once and everything else is computed from it:

* `Table.create_statement` is the DDL; `migration_statements` turns the
  registry into the statements of one numbered migration (objects and columns
  carry the ``since`` version that introduced them, so a fresh database replays
  the same history as one that has been migrating for years).
* `Table.insert_columns` is the insert order, and `Table.row` builds a row by
  column name, refusing a missing or unknown column instead of silently shifting
  every value after it.
* `Column.readable` and `Readable` say what the query planner may read; its
  allow-list (`loglytics.storage.plan.SOURCES`) is derived from them.

Everything here is immutable data; building it touches neither settings nor disk.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

__all__ = [
    "Column",
    "Kind",
    "Readable",
    "Row",
    "Source",
    "Table",
    "View",
    "kind_of_type",
    "migration_statements",
]

Kind = Literal["str", "num", "time", "date", "bool"]
Row = tuple[Any, ...]

_WRAPPERS = ("LowCardinality(", "Nullable(")
_NUMERIC = ("UInt", "Int", "Float", "Decimal")


def kind_of_type(clickhouse_type: str) -> Kind | None:
    """The planner kind a ClickHouse type reads as, or None (arrays, maps: not plannable)."""
    inner = clickhouse_type
    while inner.startswith(_WRAPPERS) and inner.endswith(")"):
        inner = inner[inner.index("(") + 1 : -1]
    if inner in ("String", "UUID") or inner.startswith(("FixedString(", "Enum")):
        return "str"
    if inner.startswith("DateTime"):
        return "time"
    if inner in ("Date", "Date32"):
        return "date"
    if inner == "Bool":
        return "bool"
    if inner.startswith(_NUMERIC):
        return "num"
    return None


def _quote(text: str) -> str:
    """A ClickHouse string literal (comments are the only free text in the DDL)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


@dataclass(frozen=True)
class Column:
    """One column: its name and ClickHouse type, and whether the query planner may read it.

    ``default`` is a DEFAULT expression: the server fills such a column, so it is
    not part of the insert. ``kind`` overrides the planner kind derived from the
    type. ``since`` is the migration that added the column to an existing table
    (leave it at 1 for columns a table was created with).
    """

    name: str
    type: str
    readable: bool = True
    kind: Kind | None = None
    default: str | None = None
    codec: str | None = None
    comment: str | None = None
    since: int = 1

    @property
    def planner_kind(self) -> Kind:
        """How the planner treats values of this column (ValueError if it cannot)."""
        kind = self.kind or kind_of_type(self.type)
        if kind is None:
            raise ValueError(f"column {self.name} ({self.type}) needs an explicit planner kind")
        return kind

    def ddl(self) -> str:
        """The column's definition as written inside CREATE TABLE / ADD COLUMN."""
        parts = [self.name, self.type]
        if self.default is not None:
            parts.append(f"DEFAULT {self.default}")
        if self.codec is not None:
            parts.append(f"CODEC({self.codec})")
        if self.comment is not None:
            parts.append(f"COMMENT {_quote(self.comment)}")
        return " ".join(parts)


@dataclass(frozen=True)
class Readable:
    """How the query planner reads a source: the time column it bounds and its default columns."""

    time_column: str
    default_columns: tuple[str, ...] = ()


def _check_columns(owner: str, columns: tuple[Column, ...], readable: Readable | None) -> None:
    """Registry mistakes fail when the registry is built, not at the first insert or query."""
    names = [c.name for c in columns]
    if len(set(names)) != len(names):
        raise ValueError(f"{owner}: duplicate column names in {names}")
    if readable is None:
        return
    allowed = {c.name: c for c in columns if c.readable}
    if kindless := [c.name for c in allowed.values() if not (c.kind or kind_of_type(c.type))]:
        raise ValueError(f"{owner}: readable columns {kindless} need an explicit planner kind")
    for name in (readable.time_column, *readable.default_columns):
        if name not in allowed:
            raise ValueError(f"{owner}: planner column {name!r} is not a readable column")
    if allowed[readable.time_column].planner_kind not in ("time", "date"):
        raise ValueError(f"{owner}: time column {readable.time_column!r} is not a time")


@dataclass(frozen=True)
class Table:
    """A ClickHouse table: columns, engine, keys and settings, plus the planner's view of it."""

    name: str
    columns: tuple[Column, ...]
    engine: str
    order_by: tuple[str, ...]
    partition_by: str | None = None
    settings: tuple[tuple[str, int], ...] = ()
    planner: Readable | None = None
    since: int = 1
    # row(**values): one insert row, each value named by its column, in insert order. A
    # missing or unknown name raises TypeError, where a positional tuple would have shifted
    # every later value into the wrong column without a word. Rows are named tuples.
    row: Callable[..., Row] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_columns(self.name, self.columns, self.planner)
        names = {c.name for c in self.columns}
        if missing := [k for k in self.order_by if k not in names]:
            raise ValueError(f"{self.name}: ORDER BY names unknown columns {missing}")
        row_type = namedtuple(f"{self.name}_row", self.insert_columns)  # type: ignore[misc]
        object.__setattr__(self, "row", row_type)

    @cached_property
    def insert_columns(self) -> tuple[str, ...]:
        """The columns an insert names, in order (DEFAULT columns are the server's to fill)."""
        return tuple(c.name for c in self.columns if c.default is None)

    @property
    def needs_final(self) -> bool:
        """Replacing tables hold replays until merged: readers must say FINAL to count right."""
        return self.engine.startswith("ReplacingMergeTree")

    def create_statement(self, version: int | None = None) -> str:
        """``CREATE TABLE IF NOT EXISTS`` with the columns as of ``version`` (default: all)."""
        columns = [c for c in self.columns if version is None or c.since <= version]
        body = ",\n    ".join(c.ddl() for c in columns)
        keys = self.order_by[0] if len(self.order_by) == 1 else f"({', '.join(self.order_by)})"
        lines = [f"CREATE TABLE IF NOT EXISTS {self.name} (\n    {body}\n)"]
        lines.append(f"ENGINE = {self.engine}")
        if self.partition_by is not None:
            lines.append(f"PARTITION BY {self.partition_by}")
        lines.append(f"ORDER BY {keys}")
        if self.settings:
            lines.append("SETTINGS " + ", ".join(f"{k} = {v}" for k, v in self.settings))
        return "\n".join(lines)

    def add_column_statements(self, version: int) -> tuple[str, ...]:
        """``ADD COLUMN IF NOT EXISTS`` for the columns migration ``version`` brought.

        ``AFTER`` its predecessor in the registry, so a migrated table has the same
        column order as one created fresh.
        """
        statements: list[str] = []
        for position, column in enumerate(self.columns):
            if column.since != version or column.since <= self.since:
                continue  # not this migration's, or created with the table
            place = f"AFTER {self.columns[position - 1].name}" if position else "FIRST"
            statements.append(
                f"ALTER TABLE {self.name} ADD COLUMN IF NOT EXISTS {column.ddl()} {place}"
            )
        return tuple(statements)


@dataclass(frozen=True)
class View:
    """A view over the tables: its SELECT and the columns it yields (as the engine types them)."""

    name: str
    columns: tuple[Column, ...]
    select: str
    planner: Readable | None = None
    since: int = 1

    def __post_init__(self) -> None:
        _check_columns(self.name, self.columns, self.planner)

    @property
    def needs_final(self) -> bool:
        """Views deduplicate inside their SELECT; FINAL does not apply to them."""
        return False

    def create_statement(self) -> str:
        return f"CREATE OR REPLACE VIEW {self.name} AS\n{self.select}"


Source = Table | View


def migration_statements(
    version: int, tables: Iterable[Table], views: Iterable[View]
) -> tuple[str, ...]:
    """The DDL of migration ``version``, derived from the registry.

    Tables first (created as of that version), then columns added to older tables,
    then views, which read both. Every statement is idempotent, so a migration cut
    short by a crash is repaired by running it again.
    """
    tables = tuple(tables)
    created = [t.create_statement(version) for t in tables if t.since == version]
    altered = [s for t in tables if t.since < version for s in t.add_column_statements(version)]
    replaced = [v.create_statement() for v in views if v.since == version]
    return (*created, *altered, *replaced)
