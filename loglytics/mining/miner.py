"""Streaming, bounded, Drain-style template miner: masking and the shape cache over the tree.

Design, and why:

* **Mask first** (:mod:`.masking`, compiled in ``loglytics._speedups``):
  one C loop per batch turns numbers, ids, addresses and durations into
  ``<*>`` and yields their values.
* **A transparent shape cache** sits in front of the tree (:mod:`.tree`,
  which decides how a line joins or creates a template): it maps a masked
  shape to its template so a repeated shape costs one dict lookup.  Each
  entry remembers the *version* of the tree leaf it was computed from, and a
  leaf's version changes whenever a template in it is created, generalised,
  merged or evicted.  A cache hit is therefore always the answer the tree
  would give right now, which is what lets :meth:`TemplateMiner.restore`
  (which starts with empty caches) reproduce the same ids.  The cache is
  bounded by ``MinerConfig.max_shape_cache``.
* **Per-shape recipes** (:mod:`.params`), computed on a miss, turn a line's
  masked values into the template's params and its leading params into
  numbers (:mod:`.numeric`), without re-reading the line.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

from .masking import mask_many
from .model import Match, MinedShapes, MinerConfig, TemplateState
from .numeric import NUMERIC_PARAMS
from .params import NumericOp, Plan, apply_plan, make_plan, numeric_recipe
from .tree import Leaf, LiveTemplate, TemplateTree

__all__ = ["TemplateMiner"]

_new = object.__new__


def _make_match(template_id: str, template: str, is_new: bool, params: tuple[str, ...]) -> Match:
    """Build a :class:`Match` without the frozen-dataclass ``__init__``.

    The generated ``__init__`` of a frozen dataclass routes every field
    through ``object.__setattr__``; filling ``__dict__`` directly gives an
    identical (equal, hashable, immutable) object at under half the cost,
    which matters because one Match is built per mined line.
    """
    match: Match = _new(Match)
    match.__dict__.update(template_id=template_id, template=template, is_new=is_new, params=params)
    return match


def _trim(cache: dict[str, object], cap: int) -> None:
    """Drop the oldest entries (dicts keep insertion order) below ``cap``."""
    while len(cache) >= cap:
        del cache[next(iter(cache))]


# Re-resolution rounds in `mine_columns` when a miss changed leaves already consulted.
_RESOLVE_ROUNDS = 3

# Cache values: (template, its leaf, that leaf's version when cached, extra).
_ShapeEntry = tuple[LiveTemplate, Leaf, int, Plan, tuple[NumericOp, ...]]


class TemplateMiner(TemplateTree):
    """Online template miner for one stream (tenant/source).

    Not thread-safe; the pipeline owns one instance per stream.
    """

    def __init__(self, config: MinerConfig | None = None) -> None:
        super().__init__(config)
        self._shapes: dict[str, _ShapeEntry] = {}

    def add(self, message: str, ts: float = 0.0) -> Match:
        """Mine one line, learning from it."""
        return self.add_many((message,), ts)[0]

    def add_many(self, messages: Sequence[str], ts: float = 0.0) -> list[Match]:
        """Mine a batch of lines in order, learning from each.

        This is the hot path of ``loglytics mine``: the batch is masked in one
        compiled call, lookups are hoisted into locals, and a line whose shape
        is cached never leaves this loop.
        """
        shapes_get = self._shapes.get
        touch = self._lru.move_to_end
        seq = self._seq
        out: list[Match] = []
        append = out.append
        shapes, masked = mask_many(list(messages))
        for shape, values in zip(shapes, masked, strict=True):
            entry = shapes_get(shape)
            is_new = False
            if entry is None or entry[1].version != entry[2]:
                self._seq = seq
                entry, is_new = self._miss(shape, ts)
            tmpl, _, _, plan, _ = entry
            if plan is None:
                params = values
            elif plan.__class__ is str:
                params = tuple(plan.format(*values).split("\x00"))
            else:
                params = apply_plan(plan, values)
            match = _new(Match)
            match.__dict__.update(
                template_id=tmpl.tid, template=tmpl.text, is_new=is_new, params=params
            )
            append(match)
            seq += 1
            tmpl.seq = seq
            tmpl.count += 1
            tmpl.last_seen = ts
            touch(tmpl.tid)
        self._seq = seq
        return out

    def _miss(self, shape: str, ts: float) -> tuple[_ShapeEntry, bool]:
        """Shape-cache miss: consult the tree, then cache the answer."""
        tokens = tuple(shape.split())
        tmpl, is_new = self._learn(tokens, ts)
        shapes = self._shapes
        if len(shapes) >= self.config.max_shape_cache:
            _trim(shapes, self.config.max_shape_cache)  # type: ignore[arg-type]
        entry = shapes[shape] = (
            tmpl,
            tmpl.leaf,
            tmpl.leaf.version,
            make_plan(tokens, tmpl.tokens),
            numeric_recipe(tokens, tmpl.tokens, NUMERIC_PARAMS),
        )
        return entry, is_new

    def mine_columns(self, messages: Sequence[str], ts: float = 0.0) -> MinedShapes:
        """Mine a batch shape by shape: the ingest hot path.

        Masking runs over the whole batch in one compiled loop; the tree is
        consulted once per distinct shape, in order of first appearance, and
        every line of a shape gets the template that shape resolves to once
        the whole batch has been learnt. Counts, last-seen times and the
        eviction order end as :meth:`add_many` leaves them; what differs is
        within the batch: where a line of the batch generalises or merges the
        template of an earlier shape, the earlier lines follow the result
        (line by line they would keep the id they had when mined).
        """
        shapes, values = mask_many(list(messages))
        created: set[str] = set()

        def learn(shape: str) -> _ShapeEntry:
            entry, is_new = self._miss(shape, ts)
            if is_new:
                created.add(entry[0].tid)
            return entry

        shapes_get = self._shapes.get
        entries: dict[str, _ShapeEntry] = {}
        for shape in dict.fromkeys(shapes):
            entry = shapes_get(shape)
            if entry is None or entry[1].version != entry[2]:
                entry = learn(shape)
            entries[shape] = entry
        for _ in range(_RESOLVE_ROUNDS):
            stale = [shape for shape, e in entries.items() if e[1].version != e[2]]
            if not stale:
                break
            for shape in stale:
                entries[shape] = learn(shape)
        self._count(shapes, entries, ts)
        tid_of = {shape: e[0].tid for shape, e in entries.items()}
        template_ids = list(map(tid_of.__getitem__, shapes))
        return MinedShapes(
            shapes=shapes,
            values=values,
            template_ids=template_ids,
            templates={e[0].tid: e[0].text for e in entries.values()},
            recipes={shape: e[4] for shape, e in entries.items()},
            plans={shape: e[3] for shape, e in entries.items()},
            new_lines=sorted(template_ids.index(tid) for tid in created & set(tid_of.values())),
        )

    def _count(self, shapes: list[str], entries: dict[str, _ShapeEntry], ts: float) -> None:
        """Counts, sequence numbers and LRU order as if the lines were mined one by one."""
        seq = self._seq
        last_line = dict(zip(shapes, range(len(shapes)), strict=True))  # last line of each shape
        counts = Counter(shapes)
        last_of: dict[LiveTemplate, int] = {}
        for shape, entry in entries.items():
            tmpl = entry[0]
            tmpl.count += counts[shape]
            tmpl.last_seen = ts
            last_of[tmpl] = max(last_of.get(tmpl, -1), last_line[shape])
        touch = self._lru.move_to_end
        for tmpl, line in sorted(last_of.items(), key=lambda item: item[1]):
            tmpl.seq = seq + line + 1
            if tmpl.tid in self._lru:
                touch(tmpl.tid)
        self._seq = seq + len(shapes)

    def match(self, message: str) -> Match | None:
        """Classify a line against the current templates without learning."""
        (shape,), (values,) = mask_many([message])
        tokens = tuple(shape.split())
        entry = self._shapes.get(shape)
        if entry is not None and entry[1].version == entry[2]:
            tmpl = entry[0]
        else:
            leaf = self._leaves.get(self._route(tokens))
            if leaf is None:
                return None
            found, word_pos = self._select(leaf, tokens)
            if found is None or word_pos >= 0:
                return None
            tmpl = found
        params = apply_plan(make_plan(tokens, tmpl.tokens), values)
        return _make_match(tmpl.tid, tmpl.text, False, params)

    def restore(
        self,
        states: Iterable[TemplateState],
        activity: Mapping[str, Sequence[float]] | None = None,
    ) -> None:
        """:meth:`TemplateTree.restore`, starting over with an empty shape cache."""
        super().restore(states, activity)
        self._shapes.clear()
