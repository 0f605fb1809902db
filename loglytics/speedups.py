"""Number parsing and folding for the ingest hot path.

Why this module: reading numeric parameters (a ``float()`` per value,
raising on many) was a large part of the ingest cost.  The compiled
``loglytics._speedups`` does it over a whole batch in one C loop.  The
pure-Python definitions below are the reference: the compiled functions must
return exactly what they return (the tests compare the two), and they stand
in wherever no compiler was available at install time, so the package stays
importable.  ``COMPILED`` says which is in use.  (The extension's batch
masking, ``mask_many``, is picked the same way next to its definition, in
:mod:`loglytics.mining.masking`: this module imports nothing of the package.)
"""

from __future__ import annotations

import math

__all__ = ["COMPILED", "fold", "fold_values", "number", "numbers"]

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
    from loglytics._speedups import fold, numbers
except ImportError:  # no compiler at install time
    fold = _fold
    numbers = _numbers
    COMPILED = False
else:
    COMPILED = True
