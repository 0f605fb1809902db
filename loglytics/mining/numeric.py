"""The numbers in a mined batch's params, folded into per-position statistics.

Why here: how a param becomes a number is the miner's encoding (each shape
carries a numeric recipe, see :func:`~loglytics.mining.params.numeric_recipe`);
its consumers (the windows) only hold the statistics and ask for them to be
updated, so the recipe tags never leave this package.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from itertools import filterfalse
from math import isnan
from typing import cast

from loglytics.speedups import fold, fold_values, numbers

from .model import MinedShapes
from .params import NumericOp, rebuild_token

__all__ = ["NUMERIC_PARAMS", "PositionStats", "RunningStats", "fold_numbers"]

NUMERIC_PARAMS = 4
"""Leading params per template that get numeric statistics (recipes cover as many)."""

RunningStats = list[float]
"""``[count, min, max, sum]`` of one param position's numbers, updated in place."""

PositionStats = dict[str, RunningStats]
"""Param position (``"0"`` .. ``"3"``, a string so it stays a JSON key) -> its stats."""

_POSITIONS = tuple(str(i) for i in range(NUMERIC_PARAMS))


def _groups(
    keys: list[int], values: list[tuple[str, ...]]
) -> Iterator[tuple[int, list[tuple[str, ...]]]]:
    """Each group key with its lines' values, in line order within the group.

    A stable sort of line numbers by the (small integer) key: C-level work per
    line, Python work per group.
    """
    if len(set(keys)) == 1:
        yield keys[0], values
        return
    order = sorted(range(len(keys)), key=keys.__getitem__)
    ordered = list(map(values.__getitem__, order))
    begin = 0
    for key, size in sorted(Counter(keys).items()):
        yield key, ordered[begin : begin + size]
        begin += size


def _derived_numbers(op: NumericOp, rows: list[tuple[str, ...]]) -> list[float]:
    """The numbers a constant or rebuilt param yields over a group's rows (non-numbers left out)."""
    if op[0] == "n":
        constant = op[1]
        return [] if constant is None else [cast(float, constant)] * len(rows)
    _, pieces, first = cast(tuple[str, tuple[str, ...], int], op)
    texts = [rebuild_token(pieces, first, row) for row in rows]
    return list(filterfalse(isnan, numbers(texts)))


def fold_numbers(
    mined: MinedShapes, begin: int, end: int, stats_of: Callable[[str], PositionStats]
) -> None:
    """Fold the leading numeric params of lines [begin, end) into ``stats_of(template_id)``.

    Shapes of one template whose params read the same way (the same recipe:
    ``GET /a user=bob`` and ``GET /b user=eve`` under ``GET <*> user=<*>``)
    form one group, and each param position of a group is one column,
    converted and folded into count/min/max/sum in one compiled call
    (`fold`). Within a group values are added in line order; a template
    whose shapes read differently adds group by group. ``stats_of`` is called
    once per group, for a template of the slice.
    """
    recipes = mined.recipes
    if not recipes:
        return
    whole = begin == 0 and end == len(mined.shapes)
    shapes = mined.shapes if whole else mined.shapes[begin:end]
    values = mined.values if whole else mined.values[begin:end]
    tids = mined.template_ids if whole else mined.template_ids[begin:end]
    group_of: dict[str, int] = {}
    groups: dict[tuple[str, tuple[NumericOp, ...]], int] = {}
    for shape, tid in dict(zip(shapes, tids, strict=True)).items():
        recipe = recipes[shape][:NUMERIC_PARAMS]
        group_of[shape] = groups.setdefault((tid, recipe), len(groups)) if recipe else -1
    if not groups:
        return
    keys = list(map(group_of.__getitem__, shapes))
    by_key = list(groups)
    for key, rows in _groups(keys, values):
        if key < 0:
            continue  # shapes with no params to read
        tid, recipe = by_key[key]
        num = stats_of(tid)
        for pos, op in enumerate(recipe):
            position = _POSITIONS[pos]
            if op[0] == "v":  # a masked value: one compiled call down the column
                folded = fold(rows, cast(int, op[1]), num.get(position))
            else:
                folded = fold_values(_derived_numbers(op, rows), num.get(position))
            if folded is not None:
                num[position] = folded
