"""Per-shape recipes that turn masked values into a template's params.

A template's ``<*>`` slots and a line's masked values usually line up one to
one, but not when the tree has generalised a whole token (``VM Paused`` →
``VM <*>``, ``blk_-<*>`` → ``<*>``).  The recipe for a (shape, template) pair
is computed once, on a cache miss, and compiled to a ``str.format`` string so
applying it per line is a single C-level format-and-split.
"""

from __future__ import annotations

from .masking import MARK

__all__ = ["Plan", "apply_plan", "make_plan"]

_SEP = "\x00"

# An op: index into the masked values, a literal token, or
# (pieces, first value index) rebuilding a partly masked token.
_Op = int | str | tuple[tuple[str, ...], int]
Plan = str | tuple[_Op, ...] | None
"""``None``: values are the params; ``str``: a format recipe; ``tuple``: ops."""


def _escape(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


def make_plan(shape: tuple[str, ...], template: tuple[str, ...]) -> Plan:
    """Recipe mapping values of a line shaped ``shape`` onto ``template``."""
    if shape == template:
        return None
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
    if not ops or any(isinstance(op, str) and _SEP in op for op in ops):
        return tuple(ops)
    rendered: list[str] = []
    for op in ops:
        if isinstance(op, int):
            rendered.append(f"{{{op}}}")
        elif isinstance(op, str):
            rendered.append(_escape(op))
        else:
            pieces, first = op
            if any(_SEP in p for p in pieces):
                return tuple(ops)
            text = _escape(pieces[0])
            for i, piece in enumerate(pieces[1:]):
                text += f"{{{first + i}}}" + _escape(piece)
            rendered.append(text)
    return _SEP.join(rendered)


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
            pieces, first = op
            text = pieces[0]
            for i, piece in enumerate(pieces[1:]):
                text += values[first + i] + piece
            out.append(text)
    return tuple(out)
