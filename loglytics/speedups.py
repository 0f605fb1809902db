"""Batch masking and number parsing for the ingest hot path.

Why this module: masking every line (a regex split) and reading numeric
parameters (a ``float()`` per value, raising on many) were most of the ingest
cost.  The compiled ``loglytics._speedups`` does each over a whole batch in
one C loop.  The pure-Python definitions below are the reference: the
compiled functions must return exactly what they return (the tests compare
the two), and they stand in wherever no compiler was available at install
time, so the package stays importable.  ``COMPILED`` says which is in use.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import cache

__all__ = ["COMPILED", "fold", "fold_values", "mask_many", "number", "numbers"]

_UNITS = "msMSkKbB%"


def number(text: str) -> float | None:
    """The value of a numeric parameter (``523ms`` gives 523.0), or None.

    Units are dropped rather than converted: the stats only compare values
    of one template position, which share their unit.
    """
    # Cheap pre-check: most params are not numbers, and float() raising is slow.
    if not text or not (text[0].isdigit() or (text[0] in "-." and len(text) > 1)):
        return None
    try:
        value = float(text.rstrip(_UNITS))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


@cache
def _mask() -> Callable[[str], tuple[str, tuple[str, ...]]]:
    """One shared ``Masker().mask``, made on first use.

    Imported here rather than at the top because ``loglytics.mining`` itself
    imports this module: a top-level import would be circular.
    """
    from loglytics.mining.masking import Masker

    return Masker().mask


def _mask_many(messages: list[str]) -> tuple[list[str], list[tuple[str, ...]]]:
    """``Masker().mask`` over a batch, as (shapes, values) columns."""
    if not isinstance(messages, list):
        raise TypeError(f"mask_many() expects a list, not {type(messages).__name__}")
    shapes: list[str] = []
    values: list[tuple[str, ...]] = []
    mask = _mask()
    for message in messages:
        if not isinstance(message, str):
            raise TypeError(f"mask_many() expects str items, not {type(message).__name__}")
        shape, params = mask(message)
        shapes.append(shape)
        values.append(params)
    return shapes, values


def _numbers(texts: list[str]) -> list[float]:
    """`number` over a batch, NaN where it gives None (so the result is all floats)."""
    if not isinstance(texts, list):
        raise TypeError(f"numbers() expects a list, not {type(texts).__name__}")
    result: list[float] = []
    for text in texts:
        if not isinstance(text, str):
            raise TypeError(f"numbers() expects str items, not {type(text).__name__}")
        value = number(text)
        result.append(math.nan if value is None else value)
    return result


def _fold(rows: list[tuple[str, ...]], k: int, stats: list[float] | None) -> list[float] | None:
    """Fold the numbers of column ``k`` (rows without one are skipped) into window stats.

    ``stats`` is ``[count, min, max, sum]`` or None. Values are added in row
    order onto the existing sum (the first value starts a new one), and the
    list is updated in place; a column with no number leaves ``stats`` as it
    was. One compiled call replaces a column copy, a conversion and three folds.
    """
    if not isinstance(rows, list):
        raise TypeError(f"fold() expects a list, not {type(rows).__name__}")
    found: list[float] = []
    for row in rows:
        if not isinstance(row, tuple):
            raise TypeError(f"fold() expects tuple rows, not {type(row).__name__}")
        if 0 <= k < len(row):
            text = row[k]
            if not isinstance(text, str):
                raise TypeError(f"fold() expects str items, not {type(text).__name__}")
            value = number(text)
            if value is not None:
                found.append(value)
    return fold_values(found, stats)


def fold_values(found: list[float], stats: list[float] | None) -> list[float] | None:
    """The folding half of `fold`, for numbers already at hand."""
    if not found:
        return stats
    if stats is None:
        return [len(found), min(found), max(found), sum(found[1:], found[0])]
    stats[0] += len(found)
    stats[1] = min(stats[1], min(found))
    stats[2] = max(stats[2], max(found))
    stats[3] = sum(found, stats[3])
    return stats


try:
    from loglytics._speedups import fold, mask_many, numbers
except ImportError:  # no compiler at install time
    fold = _fold
    mask_many = _mask_many
    numbers = _numbers
    COMPILED = False
else:
    COMPILED = True
