"""Streaming, bounded, Drain-style template miner.

Design, and why:

* **Mask first** (:mod:`.masking`): one C-level regex split per line turns
  numbers, ids, addresses and durations into ``<*>`` and yields their values.
* **Two transparent caches** sit in front of the tree.  An exact-line cache
  serves repeated lines without even masking; a shape cache maps a masked
  shape to its template so a repeated shape costs one dict lookup.  Each
  entry remembers the *version* of the tree leaf it was computed from, and a
  leaf's version changes whenever a template in it is created, generalised,
  merged or evicted.  A cache hit is therefore always the answer the tree
  would give right now, which is what makes :meth:`TemplateMiner.restore`
  (which starts with empty caches) reproduce the same ids.
* **Tree**: a flat dict keyed by token count plus the first ``max_depth``
  tokens (any token holding a ``<*>`` routes as ``<*>``).  Within a leaf the
  most similar template wins (ties go to the oldest) if at least
  ``similarity_threshold`` of the positions agree; a ``<*>`` in the template
  agrees with anything, so generalising a template never makes it match less.
  The winner generalises every disagreeing position to ``<*>``; templates of
  the same leaf that the generalised one now subsumes are merged into it and
  their ids become aliases of the survivor.
* **Bounded**: templates (LRU by last seen), both caches, aliases and
  pending tombstones all have caps from :class:`MinerConfig`.
* **Stable ids**: first 16 hex digits of BLAKE2b over the masked first
  message, assigned once; deterministic for a replay of the same stream.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Iterable, Sequence

from .masking import MARK, Masker
from .model import Match, MinerConfig, TemplateState

__all__ = ["TemplateMiner"]

# A parameter-extraction step: an index into the masked values, a literal
# token, or (pieces, first value index) to rebuild a partly masked token.
_Op = int | str | tuple[tuple[str, ...], int]
_Plan = tuple[_Op, ...] | None

_new_match = object.__new__

# Calendar words come from timestamps embedded in messages; two of them in
# the same position are variable values, never the distinguishing word of
# an event, so they generalise like masked tokens.
_DATE_WORDS = frozenset(
    "Mon Tue Wed Thu Fri Sat Sun Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec "
    "Monday Tuesday Wednesday Thursday Friday Saturday Sunday January February "
    "March April June July August September October November December".split()
)


def _make_match(template_id: str, template: str, is_new: bool, params: tuple[str, ...]) -> Match:
    """Build a :class:`Match` without the frozen-dataclass ``__init__``.

    The generated ``__init__`` of a frozen dataclass routes every field
    through ``object.__setattr__``; filling ``__dict__`` directly produces an
    identical (equal, hashable, immutable) object at under half the cost,
    which matters because one Match is built per mined line.
    """
    match: Match = _new_match(Match)
    match.__dict__.update(template_id=template_id, template=template, is_new=is_new, params=params)
    return match


class _Leaf:
    """Candidate templates sharing a route, plus a change counter."""

    __slots__ = ("key", "templates", "version")

    def __init__(self, key: tuple[str, ...]) -> None:
        self.key = key
        self.templates: list[_Template] = []
        self.version = 0


class _Template:
    """Mutable in-memory template; :meth:`state` snapshots it."""

    __slots__ = (
        "count",
        "first_seen",
        "last_seen",
        "leaf",
        "seq",
        "serial",
        "text",
        "tid",
        "tokens",
    )

    def __init__(
        self,
        tid: str,
        tokens: tuple[str, ...],
        leaf: _Leaf,
        serial: int,
        first_seen: float,
    ) -> None:
        self.tid = tid
        self.tokens = tokens
        self.text = " ".join(tokens)
        self.leaf = leaf
        self.serial = serial
        self.count = 0
        self.first_seen = first_seen
        self.last_seen = first_seen
        self.seq = 0

    def state(self) -> TemplateState:
        return TemplateState(
            template_id=self.tid,
            template=self.text,
            tokens=self.tokens,
            count=self.count,
            first_seen=self.first_seen,
            last_seen=self.last_seen,
            route=self.leaf.key,
            serial=self.serial,
            seq=self.seq,
        )


def _similarity(template: tuple[str, ...], tokens: tuple[str, ...]) -> float:
    """Fraction of positions where the template accepts the token."""
    if not tokens:
        return 1.0
    same = 0
    for want, got in zip(template, tokens, strict=True):
        if want in (got, MARK):
            same += 1
    return same / len(tokens)


def _subsumes(general: tuple[str, ...], specific: tuple[str, ...]) -> bool:
    return all(g in (MARK, s) for g, s in zip(general, specific, strict=True))


def _plan(shape: tuple[str, ...], template: tuple[str, ...]) -> _Plan:
    """How to turn a shape's masked values into the template's params.

    ``None`` (the common case) means the values already line up with the
    template's placeholders.
    """
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
    return tuple(ops)


def _apply(plan: tuple[_Op, ...], values: tuple[str, ...]) -> tuple[str, ...]:
    out: list[str] = []
    for op in plan:
        if isinstance(op, int):
            out.append(values[op])
        elif isinstance(op, str):
            out.append(op)
        else:
            pieces, k = op
            text = pieces[0]
            for i, piece in enumerate(pieces[1:]):
                text += values[k + i] + piece
            out.append(text)
    return tuple(out)


def _template_id(tokens: tuple[str, ...], salt: int) -> str:
    data = " ".join(tokens) if not salt else f"{' '.join(tokens)}\x00{salt}"
    return hashlib.blake2b(data.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


def _evict_oldest(cache: dict[str, object], cap: int) -> None:
    while len(cache) >= cap:
        del cache[next(iter(cache))]


class TemplateMiner:
    """Online template miner for one stream (tenant/source).

    Not thread-safe; the pipeline owns one instance per stream.
    """

    def __init__(self, config: MinerConfig | None = None) -> None:
        self.config = config or MinerConfig()
        self._masker = Masker()
        self._leaves: dict[tuple[str, ...], _Leaf] = {}
        self._lru: OrderedDict[str, _Template] = OrderedDict()
        # value tuples: (template, leaf, leaf version, plan or match)
        self._shapes: dict[str, tuple[_Template, _Leaf, int, _Plan]] = {}
        self._lines: dict[str, tuple[_Template, _Leaf, int, Match]] = {}
        self._aliases: dict[str, str] = {}
        self._dirty: dict[str, None] = {}
        self._tombstones: dict[str, TemplateState] = {}
        self._serial = 0
        self._seq = 0

    # ------------------------------------------------------------------ API

    def __len__(self) -> int:
        return len(self._lru)

    def add(self, message: str, ts: float = 0.0) -> Match:
        """Mine one line, learning from it."""
        return self.add_many((message,), ts)[0]

    def add_many(self, messages: Sequence[str], ts: float = 0.0) -> list[Match]:
        """Mine a batch of lines in order, learning from each.

        This is the hot path: attribute lookups are hoisted into locals and
        cache hits never leave this loop.
        """
        lines = self._lines
        lines_get = lines.get
        shapes = self._shapes
        shapes_get = shapes.get
        mask = self._masker.mask
        touch = self._lru.move_to_end
        dirty = self._dirty
        line_cap = self.config.max_line_cache
        shape_cap = self.config.max_shape_cache
        seq = self._seq
        out: list[Match] = []
        append = out.append
        for message in messages:
            hit = lines_get(message)
            if hit is not None and hit[1].version == hit[2]:
                tmpl = hit[0]
                append(hit[3])
            else:
                shape, values = mask(message)
                entry = shapes_get(shape)
                if entry is not None and entry[1].version == entry[2]:
                    tmpl = entry[0]
                    plan = entry[3]
                    is_new = False
                else:
                    self._seq = seq
                    tokens = tuple(shape.split())
                    tmpl, is_new = self._learn(tokens, ts)
                    plan = _plan(tokens, tmpl.tokens)
                    if len(shapes) >= shape_cap:
                        _evict_oldest(shapes, shape_cap)  # type: ignore[arg-type]
                    leaf = tmpl.leaf
                    shapes[shape] = (tmpl, leaf, leaf.version, plan)
                params = values if plan is None else _apply(plan, values)
                match = _make_match(tmpl.tid, tmpl.text, is_new, params)
                append(match)
                if not is_new:
                    if len(lines) >= line_cap:
                        _evict_oldest(lines, line_cap)  # type: ignore[arg-type]
                    leaf = tmpl.leaf
                    lines[message] = (tmpl, leaf, leaf.version, match)
            seq += 1
            tmpl.seq = seq
            tmpl.count += 1
            tmpl.last_seen = ts
            touch(tmpl.tid)
            dirty[tmpl.tid] = None
        self._seq = seq
        return out

    def match(self, message: str) -> Match | None:
        """Classify a line against the current templates without learning."""
        shape, values = self._masker.mask(message)
        entry = self._shapes.get(shape)
        tokens = tuple(shape.split())
        if entry is not None and entry[1].version == entry[2]:
            tmpl = entry[0]
        else:
            leaf = self._leaves.get(self._route(tokens))
            found = None if leaf is None else self._best(leaf, tokens)
            if found is None:
                return None
            tmpl = found
        plan = _plan(tokens, tmpl.tokens)
        params = values if plan is None else _apply(plan, values)
        return _make_match(tmpl.tid, tmpl.text, False, params)

    def resolve(self, template_id: str) -> str:
        """Follow merge redirects to the id that currently stands for it."""
        seen = 0
        aliases = self._aliases
        while template_id in aliases and seen <= len(aliases):
            template_id = aliases[template_id]
            seen += 1
        return template_id

    def template(self, template_id: str) -> TemplateState | None:
        """Current state of a live template (merged ids are followed)."""
        tmpl = self._lru.get(self.resolve(template_id))
        return None if tmpl is None else tmpl.state()

    def templates(self) -> list[TemplateState]:
        """All live templates, least recently seen first."""
        return [t.state() for t in self._lru.values()]

    def export_dirty(self) -> list[TemplateState]:
        """Templates created, changed, merged or evicted since the last call.

        Live templates come first, then tombstones (``merged_into`` set, keep
        them so aliases survive a restart; ``evicted`` set, delete the key).
        """
        out = [self._lru[tid].state() for tid in self._dirty if tid in self._lru]
        out.extend(self._tombstones.values())
        self._dirty.clear()
        self._tombstones.clear()
        return out

    def restore(self, states: Iterable[TemplateState]) -> None:
        """Load persisted states (upsert), rebuilding tree and LRU order."""
        templates = {t.tid: t for t in self._lru.values()}
        for state in states:
            templates.pop(state.template_id, None)
            if state.merged_into is not None:
                self._aliases[state.template_id] = state.merged_into
            elif not state.evicted:
                self._aliases.pop(state.template_id, None)
                tmpl = _Template(
                    state.template_id,
                    tuple(state.tokens),
                    _Leaf(tuple(state.route)),
                    state.serial,
                    state.first_seen,
                )
                tmpl.count = state.count
                tmpl.last_seen = state.last_seen
                tmpl.seq = state.seq
                templates[tmpl.tid] = tmpl
        for leaf in self._leaves.values():
            leaf.version += 1  # invalidate cache entries pointing at old leaves
        self._leaves.clear()
        self._shapes.clear()
        self._lines.clear()
        self._lru.clear()
        for tmpl in sorted(templates.values(), key=lambda t: t.serial):
            found = self._leaves.get(tmpl.leaf.key)
            if found is None:
                found = self._leaves[tmpl.leaf.key] = _Leaf(tmpl.leaf.key)
            tmpl.leaf = found
            leaf = found
            leaf.templates.append(tmpl)
        for tmpl in sorted(templates.values(), key=lambda t: t.seq):
            self._lru[tmpl.tid] = tmpl
        self._serial = max([self._serial, *(t.serial + 1 for t in templates.values())])
        self._seq = max([self._seq, *(t.seq for t in templates.values())])
        while len(self._lru) > self.config.max_templates:
            self._evict()

    # ------------------------------------------------------------ internals

    def _route(self, tokens: tuple[str, ...]) -> tuple[str, ...]:
        head = tokens[: self.config.max_depth]
        return (str(len(tokens)), *(MARK if MARK in t else t for t in head))

    def _best(self, leaf: _Leaf, tokens: tuple[str, ...]) -> _Template | None:
        """Template the tokens belong to as-is (no learning), if any."""
        best, word_pos = self._select(leaf, tokens)
        return best if word_pos < 0 else None

    def _select(self, leaf: _Leaf, tokens: tuple[str, ...]) -> tuple[_Template | None, int]:
        """Most similar template and the position of its one word conflict.

        Returns ``(template, -1)`` for a template the tokens can join by plain
        generalisation, ``(template, p)`` when they differ from it in exactly
        one *word* position ``p`` (neither side masked there), or
        ``(None, -1)``.  Joinable templates are preferred over word
        conflicts; among equals the most similar, then the oldest, wins.
        """
        threshold = self.config.similarity_threshold
        n = len(tokens) or 1
        best: _Template | None = None
        best_sim = -1.0
        conflict: _Template | None = None
        conflict_pos = -1
        conflict_sim = -1.0
        for tmpl in leaf.templates:
            same = 0
            word_pos = -1
            words = 0
            for i, (want, got) in enumerate(zip(tmpl.tokens, tokens, strict=True)):
                if want == got or want == MARK:
                    same += 1
                elif not (
                    MARK in want or MARK in got or (want in _DATE_WORDS and got in _DATE_WORDS)
                ):
                    words += 1
                    word_pos = i
            sim = same / n
            if sim < threshold or words > 1:
                continue
            if words == 0:
                if sim > best_sim:
                    best, best_sim = tmpl, sim
            elif sim > conflict_sim:
                conflict, conflict_pos, conflict_sim = tmpl, word_pos, sim
        if best is not None:
            return best, -1
        return conflict, conflict_pos

    def _learn(self, tokens: tuple[str, ...], ts: float) -> tuple[_Template, bool]:
        """Tree search; join (and generalise) a template or create one.

        A conflict in a word position does not generalise immediately: the
        line starts its own template (``VM Started`` vs ``VM Stopped`` are
        usually different events) until the templates that differ only there
        show more than ``word_values`` distinct words, at which point the
        position is evidently a parameter (a user or host name) and they are
        merged.
        """
        key = self._route(tokens)
        leaf = self._leaves.get(key)
        if leaf is None:
            leaf = self._leaves[key] = _Leaf(key)
        best, word_pos = self._select(leaf, tokens)
        if best is not None and word_pos >= 0:
            best = self._merge_word_variants(leaf, best, word_pos, tokens)
        if best is None:
            return self._create(tokens, leaf, ts), True
        self._generalise(best, tokens)
        return best, False

    def _merge_word_variants(
        self, leaf: _Leaf, base: _Template, pos: int, tokens: tuple[str, ...]
    ) -> _Template | None:
        """Merge the variants of ``base`` at ``pos`` once they are numerous."""
        siblings = [
            t
            for t in leaf.templates
            if MARK not in t.tokens[pos]
            and all(
                j == pos or a == b or MARK in a or MARK in b
                for j, (a, b) in enumerate(zip(t.tokens, base.tokens, strict=True))
            )
        ]
        values = {t.tokens[pos] for t in siblings}
        values.add(tokens[pos])
        if len(values) <= self.config.word_values:
            return None
        survivor = siblings[0]
        for other in siblings[1:]:
            self._generalise(survivor, other.tokens, absorb=False)
        self._generalise(survivor, tokens, absorb=False)
        self._absorb(survivor, leaf)
        return survivor

    def _generalise(self, tmpl: _Template, tokens: tuple[str, ...], absorb: bool = True) -> None:
        """Widen ``tmpl`` to accept ``tokens``; merge what it then subsumes."""
        if tmpl.tokens == tokens:
            return
        general = tuple(w if w == g else MARK for w, g in zip(tmpl.tokens, tokens, strict=True))
        if general == tmpl.tokens:
            return
        tmpl.tokens = general
        tmpl.text = " ".join(general)
        tmpl.leaf.version += 1
        self._dirty[tmpl.tid] = None
        if absorb:
            self._absorb(tmpl, tmpl.leaf)

    def _create(self, tokens: tuple[str, ...], leaf: _Leaf, ts: float) -> _Template:
        salt = 0
        tid = _template_id(tokens, salt)
        while tid in self._lru:
            salt += 1
            tid = _template_id(tokens, salt)
        self._aliases.pop(tid, None)
        self._tombstones.pop(tid, None)
        tmpl = _Template(tid, tokens, leaf, self._serial, ts)
        self._serial += 1
        leaf.templates.append(tmpl)
        leaf.version += 1
        self._lru[tid] = tmpl
        self._dirty[tid] = None
        while len(self._lru) > self.config.max_templates:
            self._evict()
        return tmpl

    def _absorb(self, survivor: _Template, leaf: _Leaf) -> None:
        """Merge templates of ``leaf`` that ``survivor`` now subsumes."""
        for other in [t for t in leaf.templates if t is not survivor]:
            if _subsumes(survivor.tokens, other.tokens):
                leaf.templates.remove(other)
                del self._lru[other.tid]
                self._dirty.pop(other.tid, None)
                survivor.count += other.count
                survivor.first_seen = min(survivor.first_seen, other.first_seen)
                if len(self._aliases) >= self.config.max_aliases:
                    del self._aliases[next(iter(self._aliases))]
                self._aliases[other.tid] = survivor.tid
                self._tombstone(other, merged_into=survivor.tid)

    def _evict(self) -> None:
        tid, tmpl = self._lru.popitem(last=False)
        leaf = tmpl.leaf
        leaf.templates.remove(tmpl)
        leaf.version += 1
        if not leaf.templates:
            del self._leaves[leaf.key]
        self._dirty.pop(tid, None)
        self._tombstone(tmpl, merged_into=None)

    def _tombstone(self, tmpl: _Template, merged_into: str | None) -> None:
        state = tmpl.state()
        tomb = TemplateState(
            template_id=state.template_id,
            template=state.template,
            tokens=state.tokens,
            count=state.count,
            first_seen=state.first_seen,
            last_seen=state.last_seen,
            route=state.route,
            serial=state.serial,
            seq=state.seq,
            merged_into=merged_into,
            evicted=merged_into is None,
        )
        tombs = self._tombstones
        tombs.pop(tmpl.tid, None)
        if len(tombs) >= self.config.max_tombstones:
            del tombs[next(iter(tombs))]
        tombs[tmpl.tid] = tomb
