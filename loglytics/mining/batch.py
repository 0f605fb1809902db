"""A message's lines after parsing and mining: the miner's output as its consumers see it.

The ingest pipeline fills a `MinedBatch` (parsed columns plus the miner's
`MinedShapes`); the windows count it and fold its numbers
(:func:`~loglytics.mining.numeric.fold_numbers`) without knowing how shapes,
plans and recipes are encoded.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .model import MinedShapes
from .params import apply_plan

__all__ = ["MinedBatch", "MinedLine"]


@dataclass(frozen=True, slots=True)
class MinedLine:
    """One line after parsing and mining: what a window needs of it."""

    ts: float
    level: str
    template_id: str
    template: str
    is_new: bool
    params: tuple[str, ...]
    message: str
    flagged: bool = False


@dataclass(slots=True)
class MinedBatch:
    """A message's mined lines as parallel columns, in line order.

    Why columns: the ingest hot path handles hundreds of lines per message,
    and one object per line (plus reading it back field by field) cost about
    as much as the windowing itself; columns let the windows count levels and
    templates with C-level `Counter`s over slices, and fold numeric params
    per shape down whole columns. `flagged` holds the sorted indices of
    flagged lines (usually none).
    """

    ts: list[float]
    levels: list[str]
    messages: list[str]
    mined: MinedShapes
    flagged: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ts)

    def lines(self) -> list[MinedLine]:
        """The same lines as one `MinedLine` each, params decoded (for callers wanting objects)."""
        mined = self.mined
        flagged = set(self.flagged)
        new = set(mined.new_lines)
        return [
            MinedLine(
                t,
                lv,
                tid,
                mined.templates[tid],
                i in new,
                apply_plan(mined.plans[shape], values),
                msg,
                i in flagged,
            )
            for i, (t, lv, tid, shape, values, msg) in enumerate(
                zip(
                    self.ts,
                    self.levels,
                    mined.template_ids,
                    mined.shapes,
                    mined.values,
                    self.messages,
                    strict=True,
                )
            )
        ]
