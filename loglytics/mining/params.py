"""Per-shape recipes that turn masked values into a template's params.

A template's ``<*>`` slots and a line's masked values usually line up one to
one, but not when the tree has generalised a whole token (``VM Paused`` →
``VM <*>``, ``blk_-<*>`` → ``<*>``).  The recipe for a (shape, template) pair
is computed once, on a cache miss, and compiled to a ``str.format`` string so
applying it per line is a single C-level format-and-split.
"""

from __future__ import annotations

from loglytics.speedups import number

from .masking import MARK

__all__ = ["NumericOp", "Plan", "apply_plan", "make_plan", "numeric_recipe", "rebuild_token"]

_SEP = "\x00"
_FIELD = "{}"

# An op: index into the masked values, a literal token, or
# (pieces, first value index) rebuilding a partly masked token.
_Op = int | str | tuple[tuple[str, ...], int]
Plan = str | tuple[_Op, ...] | None
"""``None``: values are the params; ``str``: a format recipe; ``tuple``: ops."""

NumericOp = tuple[str, int] | tuple[str, float | None] | tuple[str, tuple[str, ...], int]
"""How one param becomes a number: ``("v", k)`` the k-th masked value, ``("n", x)``
a constant (``None``: never a number), ``("x", pieces, k)`` a partly masked token
rebuilt from ``pieces`` around values k, k+1, ..."""


def _escape(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


def make_plan(shape: tuple[str, ...], template: tuple[str, ...]) -> Plan:
    """Recipe mapping values of a line shaped ``shape`` onto ``template``.

    Normally a ``str.format`` string with one auto-numbered field per masked
    value, params separated by ``\\x00``: a kept token contributes one param
    per placeholder, a generalised token one param holding its original text.
    """
    if shape == template:
        return None
    items: list[str] = []
    for got, want in zip(shape, template, strict=True):
        if got == want:
            items.extend(_FIELD for _ in range(got.count(MARK)))
        else:
            items.append(_escape(got).replace(MARK, _FIELD))
    if not items:
        return ()
    if any(_SEP in item for item in items):
        return _ops(shape, template)
    return _SEP.join(items)


def _ops(shape: tuple[str, ...], template: tuple[str, ...]) -> tuple[_Op, ...]:
    """Slow but separator-safe recipe, for text that contains ``\\x00``."""
    ops: list[_Op] = []
    k = 0
    for got, want in zip(shape, template, strict=True):
        marks = got.count(MARK)
        if got == want:
            ops.extend(range(k, k + marks))
        elif marks:
            ops.append((tuple(got.split(MARK)), k))
        else:
            ops.append(got)
        k += marks
    return tuple(ops)


def apply_plan(plan: Plan, values: tuple[str, ...]) -> tuple[str, ...]:
    """Params for a line with masked ``values`` (see :func:`make_plan`)."""
    if plan is None:
        return values
    if isinstance(plan, str):
        return tuple(plan.format(*values).split(_SEP))
    out: list[str] = []
    for op in plan:
        if isinstance(op, int):
            out.append(values[op])
        elif isinstance(op, str):
            out.append(op)
        else:
            out.append(rebuild_token(*op, values))
    return tuple(out)


def rebuild_token(pieces: tuple[str, ...], first: int, values: tuple[str, ...]) -> str:
    """A partly masked token's text: ``pieces`` around values ``first``, ``first + 1``, ..."""
    text = pieces[0]
    for i, piece in enumerate(pieces[1:]):
        text += values[first + i] + piece
    return text


def numeric_recipe(
    shape: tuple[str, ...],
    template: tuple[str, ...],
    limit: int,
) -> tuple[NumericOp, ...]:
    """How the first ``limit`` params of a (shape, template) pair turn into numbers.

    The windows keep numeric statistics of a template's leading params. Params
    follow :func:`make_plan`; this says, per param, whether it is a masked value
    (converted down a whole column at once), a constant (one conversion per
    shape), or a token rebuilt from pieces (per line, and only when its text
    could start like a number).
    """
    ops: list[NumericOp] = []
    k = 0
    for got, want in zip(shape, template, strict=True):
        if len(ops) >= limit:
            break
        marks = got.count(MARK)
        if got == want:
            ops.extend(("v", k + j) for j in range(marks))
        elif not marks:
            ops.append(("n", number(got)))
        else:
            pieces = tuple(got.split(MARK))
            head = pieces[0][:1]
            if head and not (head.isdigit() or head in "-."):
                ops.append(("n", None))  # starts with a letter: never a number
            else:
                ops.append(("x", pieces, k))
        k += marks
    return tuple(ops[:limit])
