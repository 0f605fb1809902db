"""Value types shared by the miner, its callers and its persistence layer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NotRequired, TypedDict

from .params import NumericOp, Plan

__all__ = ["Match", "MinedShapes", "MinerConfig", "TemplateRecord", "TemplateState"]


@dataclass(frozen=True)
class MinerConfig:
    """Tunables of :class:`~loglytics.mining.miner.TemplateMiner`.

    The defaults are the single configuration evaluated on all LogHub systems;
    nothing in them is specific to one log source.
    """

    similarity_threshold: float = 0.5
    """Minimum fraction of equal tokens for a line to join an existing template."""
    max_templates: int = 1000
    """Live templates kept per miner; the least recently seen one is evicted."""
    max_depth: int = 2
    """Leading tokens (after the token count) used to route a line in the tree."""
    word_values: int = 4
    """Distinct words a position may show before it is treated as a parameter."""
    max_shape_cache: int = 50_000
    """Masked shapes remembered so a repeated shape costs one dict lookup."""
    max_aliases: int = 100_000
    """Redirects kept from merged template ids to their survivors."""
    max_tombstones: int = 10_000
    """Evicted/merged templates kept for :meth:`export_dirty` until exported."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.similarity_threshold <= 1.0:
            raise ValueError("similarity_threshold must be within [0, 1]")
        for name in (
            "max_templates",
            "max_shape_cache",
            "max_aliases",
            "max_tombstones",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.max_depth < 0:
            raise ValueError("max_depth must be >= 0")


@dataclass(frozen=True)
class Match:
    """Result of mining one line.

    ``params`` line up with the ``<*>`` placeholders of ``template``: masked
    values verbatim (``"523"``) and, where the tree generalised a whole token,
    that token's original text.
    """

    template_id: str
    template: str
    is_new: bool
    params: tuple[str, ...]


class TemplateRecord(TypedDict):
    """A `TemplateState` as a changelog-table value (JSON: tuples become lists).

    The keys are :class:`TemplateState`'s fields. Rows written before a field
    existed lack it and read as its default, hence the `NotRequired` ones.
    """

    template_id: str
    template: str
    tokens: list[str]
    count: int
    first_seen: float
    last_seen: float
    route: NotRequired[list[str]]
    serial: NotRequired[int]
    seq: NotRequired[int]
    merged_into: NotRequired[str | None]
    evicted: NotRequired[bool]


@dataclass(frozen=True)
class TemplateState:
    """Persistable snapshot of one template (a changelog-table value).

    ``route`` and ``serial`` let :meth:`TemplateMiner.restore` rebuild the
    exact tree (leaf and candidate order) so a restored miner takes the same
    decisions; ``seq`` restores the least-recently-seen order used for
    eviction.  ``merged_into`` marks a template folded into another one (its id
    becomes an alias; keep this record so the alias survives a restart);
    ``evicted`` marks a template dropped by the size cap (delete the key).
    """

    template_id: str
    template: str
    tokens: tuple[str, ...]
    count: int
    first_seen: float
    last_seen: float
    route: tuple[str, ...] = ()
    serial: int = 0
    seq: int = 0
    merged_into: str | None = None
    evicted: bool = False

    @property
    def alive(self) -> bool:
        """Whether the template still exists in the miner."""
        return self.merged_into is None and not self.evicted

    def to_dict(self) -> TemplateRecord:
        """JSON-able form (tuples become lists)."""
        return {
            "template_id": self.template_id,
            "template": self.template,
            "tokens": list(self.tokens),
            "count": self.count,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "route": list(self.route),
            "serial": self.serial,
            "seq": self.seq,
            "merged_into": self.merged_into,
            "evicted": self.evicted,
        }

    @classmethod
    def from_dict(cls, data: TemplateRecord) -> TemplateState:
        """Inverse of :meth:`to_dict`; optional fields may be missing."""
        merged = data.get("merged_into")
        return cls(
            template_id=str(data["template_id"]),
            template=str(data["template"]),
            tokens=tuple(str(t) for t in data["tokens"]),
            count=int(data["count"]),
            first_seen=float(data["first_seen"]),
            last_seen=float(data["last_seen"]),
            route=tuple(str(t) for t in data.get("route", ())),
            serial=int(data.get("serial", 0)),
            seq=int(data.get("seq", 0)),
            merged_into=None if merged is None else str(merged),
            evicted=bool(data.get("evicted", False)),
        )


@dataclass(slots=True)
class MinedShapes:
    """A batch mined as columns (see :meth:`TemplateMiner.mine_columns`).

    Per line: its masked shape, its masked values and its template id; per
    distinct shape: how its leading params become numbers. Lines of one shape
    share everything but their values, so consumers group by shape and work
    down columns instead of building an object per line.
    """

    shapes: list[str]
    values: list[tuple[str, ...]]
    template_ids: list[str]
    templates: dict[str, str]
    """Template id -> its text, for the ids in ``template_ids``."""
    recipes: dict[str, tuple[NumericOp, ...]]
    """Shape -> the numeric recipe of its leading params (see ``numeric_recipe``)."""
    plans: dict[str, Plan]
    """Shape -> how its values become the template's params (see ``make_plan``)."""
    new_lines: list[int]
    """Sorted indices of the lines that created a template (its first line in the batch)."""
