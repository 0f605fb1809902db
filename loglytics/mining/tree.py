"""The template tree: candidate templates by route, how a line joins one, and the bounds.

Design, and why:

* **Tree**: a flat dict keyed by token count plus the first ``max_depth``
  tokens (a token holding ``<*>`` routes as ``<*>``).  In a leaf, the most
  similar template (share of positions equal or ``<*>`` in the template) at
  or above ``similarity_threshold`` is joined and generalised: differing
  positions become ``<*>``.  Every change to a leaf (a template created,
  generalised, merged or evicted) bumps its *version*, which is what keeps
  the miner's shape cache (:mod:`.miner`) transparent.
* **Words are not parameters until proven**: when the best candidate
  differs from the line in exactly one position and both tokens there are
  plain words (not masked, not calendar words), the line starts its own
  template, because ``VM Paused`` and ``VM Started`` are usually different
  events.  Once more than ``word_values`` sibling templates differ only in
  that position it is evidently a parameter (user or host names) and the
  siblings are merged; merged ids become aliases of the oldest sibling.
* **Bounded**: templates (LRU by last seen), aliases and pending tombstones
  all have caps from :class:`MinerConfig`.
* **Stable ids**: first 16 hex digits of BLAKE2b over the masked first
  message, assigned once; deterministic for a replay of the same stream.
* **Restorable**: :meth:`TemplateTree.export_dirty` and
  :meth:`TemplateTree.activity` are what a changelog keeps, and
  :meth:`TemplateTree.restore` rebuilds the same tree from them.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from operator import eq

from .masking import DATE_WORDS, MARK
from .model import MinerConfig, TemplateState

__all__ = ["Leaf", "LiveTemplate", "TemplateTree"]


class Leaf:
    """Candidate templates sharing a route, plus a change counter."""

    __slots__ = ("key", "templates", "version")

    def __init__(self, key: tuple[str, ...]) -> None:
        self.key = key
        self.templates: list[LiveTemplate] = []
        self.version = 0


class LiveTemplate:
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
        "wildcards",
    )

    def __init__(
        self, tid: str, tokens: tuple[str, ...], leaf: Leaf, serial: int, first_seen: float
    ) -> None:
        self.tid = tid
        self.tokens = tokens
        self.text = " ".join(tokens)
        self.wildcards = _wildcards(tokens)
        self.leaf = leaf
        self.serial = serial
        self.count = 0
        self.first_seen = first_seen
        self.last_seen = first_seen
        self.seq = 0

    def state(self, merged_into: str | None = None, evicted: bool = False) -> TemplateState:
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
            merged_into=merged_into,
            evicted=evicted,
        )


def _is_word_conflict(want: str, got: str) -> bool:
    """Differing tokens that may name different events (see module doc)."""
    if MARK in want or MARK in got:
        return False
    return not (want in DATE_WORDS and got in DATE_WORDS)


def _wildcards(tokens: tuple[str, ...]) -> frozenset[int]:
    return frozenset(i for i, tok in enumerate(tokens) if tok == MARK)


def _subsumes(general: tuple[str, ...], specific: tuple[str, ...]) -> bool:
    return all(g in (MARK, s) for g, s in zip(general, specific, strict=True))


def _template_id(tokens: tuple[str, ...], salt: int) -> str:
    text = " ".join(tokens)
    if salt:
        text = f"{text}\x00{salt}"
    data = text.encode("utf-8", "surrogatepass")
    return hashlib.blake2b(data, digest_size=8).hexdigest()


class TemplateTree:
    """The templates of one stream, their routes, aliases and tombstones.

    Learning goes through :meth:`_learn` (one line's tokens at a time);
    :class:`~loglytics.mining.miner.TemplateMiner` adds masking, the shape
    cache and batch mining on top. Not thread-safe.
    """

    def __init__(self, config: MinerConfig | None = None) -> None:
        self.config = config or MinerConfig()
        self._leaves: dict[tuple[str, ...], Leaf] = {}
        self._lru: OrderedDict[str, LiveTemplate] = OrderedDict()
        self._aliases: dict[str, str] = {}
        self._tombstones: dict[str, TemplateState] = {}
        self._changed: dict[str, LiveTemplate] = {}  # created or generalised since the last export
        self._serial = 0
        self._seq = 0

    def __len__(self) -> int:
        return len(self._lru)

    def resolve(self, template_id: str) -> str:
        """Follow merge redirects to the id that currently stands for it."""
        aliases = self._aliases
        hops = 0
        while template_id in aliases and hops <= len(aliases):
            template_id = aliases[template_id]
            hops += 1
        return template_id

    def template(self, template_id: str) -> TemplateState | None:
        """Current state of a live template (merged ids are followed)."""
        tmpl = self._lru.get(self.resolve(template_id))
        return None if tmpl is None else tmpl.state()

    def templates(self) -> list[TemplateState]:
        """All live templates, least recently seen first."""
        return [t.state() for t in self._lru.values()]

    def export_dirty(self) -> list[TemplateState]:
        """Templates created, generalised, merged or evicted since the last call.

        Live templates come first, then tombstones: keep ``merged_into``
        ones (they carry the alias a restart needs), delete ``evicted`` keys.
        Merely seeing a template again is not a change: its count, last-seen
        time and eviction order are :meth:`activity`, which is small enough to
        persist with every batch (a record per template seen would make the
        changelog pay per template and batch, not per change).
        """
        out = [tmpl.state() for tmpl in self._changed.values()]
        self._changed.clear()
        out.extend(self._tombstones.values())
        self._tombstones.clear()
        return out

    def activity(self) -> dict[str, list[float]]:
        """``template_id -> [count, last_seen, seq]`` of every live template.

        What :meth:`export_dirty` leaves out; :meth:`restore` takes it back, so
        exported states plus the latest activity restore the same miner.
        """
        return {t.tid: [t.count, t.last_seen, t.seq] for t in self._lru.values()}

    def restore(
        self,
        states: Iterable[TemplateState],
        activity: Mapping[str, Sequence[float]] | None = None,
    ) -> None:
        """Load persisted states (upsert) and activity, rebuilding tree and LRU order.

        Leaf order follows ``serial`` and eviction order follows ``seq``, so
        a miner restored from everything another miner exported, plus its
        :meth:`activity` at that point, makes the same decisions as that
        miner from then on. Activity overrides the counts in the states.
        """
        templates = {t.tid: t for t in self._lru.values()}
        for state in states:
            templates.pop(state.template_id, None)
            if state.merged_into is not None:
                self._aliases[state.template_id] = state.merged_into
            elif not state.evicted:
                self._aliases.pop(state.template_id, None)
                tmpl = LiveTemplate(
                    state.template_id,
                    tuple(state.tokens),
                    Leaf(tuple(state.route)),
                    state.serial,
                    state.first_seen,
                )
                tmpl.count = state.count
                tmpl.last_seen = state.last_seen
                tmpl.seq = state.seq
                templates[tmpl.tid] = tmpl
        for tid, (count, last_seen, seq) in (activity or {}).items():
            restored = templates.get(tid)
            if restored is not None:
                restored.count, restored.last_seen, restored.seq = int(count), last_seen, int(seq)
        for old in self._leaves.values():
            old.version += 1  # stale cache entries must not match any more
        self._leaves.clear()
        self._lru.clear()
        self._changed.clear()
        for tmpl in sorted(templates.values(), key=lambda t: t.serial):
            leaf = self._leaves.get(tmpl.leaf.key)
            if leaf is None:
                leaf = self._leaves[tmpl.leaf.key] = Leaf(tmpl.leaf.key)
            tmpl.leaf = leaf
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

    def _select(self, leaf: Leaf, tokens: tuple[str, ...]) -> tuple[LiveTemplate | None, int]:
        """Most similar template and the position of its one word conflict.

        Returns ``(template, -1)`` for a template the tokens can join by
        plain generalisation, ``(template, p)`` when they differ from it in
        exactly one word position ``p``, or ``(None, -1)``.  Joinable
        templates are preferred; among equals the most similar, then the
        oldest, wins.
        """
        threshold = self.config.similarity_threshold
        n = len(tokens) or 1
        masked_at = frozenset(i for i, tok in enumerate(tokens) if tok == MARK)
        best: LiveTemplate | None = None
        best_sim = -1.0
        conflict: LiveTemplate | None = None
        conflict_pos = -1
        conflict_sim = -1.0
        for tmpl in leaf.templates:
            # Equal tokens plus template wildcards over non-equal tokens,
            # counted in C (map/eq, set intersection): this runs for every
            # template of the leaf on every cache miss.
            wild = tmpl.wildcards
            same = sum(map(eq, tmpl.tokens, tokens)) + len(wild) - len(wild & masked_at)
            sim = same / n
            if sim < threshold:
                continue
            words = 0
            word_pos = -1
            if same < len(tokens):
                for i, (want, got) in enumerate(zip(tmpl.tokens, tokens, strict=True)):
                    if want != got and want != MARK and _is_word_conflict(want, got):
                        words += 1
                        word_pos = i
                if words > 1:
                    continue
            if words == 0:
                if sim > best_sim:
                    best, best_sim = tmpl, sim
            elif sim > conflict_sim:
                conflict, conflict_pos, conflict_sim = tmpl, word_pos, sim
        if best is not None:
            return best, -1
        return conflict, conflict_pos

    def _learn(self, tokens: tuple[str, ...], ts: float) -> tuple[LiveTemplate, bool]:
        """Tree search; join (and generalise) a template or create one."""
        key = self._route(tokens)
        leaf = self._leaves.get(key)
        if leaf is None:
            leaf = self._leaves[key] = Leaf(key)
        best, word_pos = self._select(leaf, tokens)
        if best is not None and word_pos >= 0:
            best = self._merge_word_variants(leaf, best, word_pos, tokens)
        if best is None:
            return self._create(tokens, leaf, ts), True
        self._generalise(best, tokens)
        return best, False

    def _merge_word_variants(
        self, leaf: Leaf, base: LiveTemplate, pos: int, tokens: tuple[str, ...]
    ) -> LiveTemplate | None:
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
        self._absorb(survivor)
        return survivor

    def _generalise(self, tmpl: LiveTemplate, tokens: tuple[str, ...], absorb: bool = True) -> None:
        """Widen ``tmpl`` to accept ``tokens``; merge what it then subsumes."""
        general = tuple(w if w == g else MARK for w, g in zip(tmpl.tokens, tokens, strict=True))
        if general == tmpl.tokens:
            return
        tmpl.tokens = general
        tmpl.text = " ".join(general)
        tmpl.wildcards = _wildcards(general)
        tmpl.leaf.version += 1
        self._changed[tmpl.tid] = tmpl
        if absorb:
            self._absorb(tmpl)

    def _absorb(self, survivor: LiveTemplate) -> None:
        """Merge the other templates of the leaf that ``survivor`` subsumes."""
        leaf = survivor.leaf
        for other in [t for t in leaf.templates if t is not survivor]:
            if not _subsumes(survivor.tokens, other.tokens):
                continue
            leaf.templates.remove(other)
            leaf.version += 1
            del self._lru[other.tid]
            survivor.count += other.count
            survivor.first_seen = min(survivor.first_seen, other.first_seen)
            survivor.last_seen = max(survivor.last_seen, other.last_seen)
            if len(self._aliases) >= self.config.max_aliases:
                del self._aliases[next(iter(self._aliases))]
            self._aliases[other.tid] = survivor.tid
            self._tombstone(other.state(merged_into=survivor.tid))
            self._changed[survivor.tid] = survivor

    def _create(self, tokens: tuple[str, ...], leaf: Leaf, ts: float) -> LiveTemplate:
        salt = 0
        tid = _template_id(tokens, salt)
        while tid in self._lru:
            salt += 1
            tid = _template_id(tokens, salt)
        self._aliases.pop(tid, None)
        self._tombstones.pop(tid, None)
        tmpl = LiveTemplate(tid, tokens, leaf, self._serial, ts)
        self._serial += 1
        leaf.templates.append(tmpl)
        leaf.version += 1
        self._lru[tid] = tmpl
        self._changed[tid] = tmpl
        while len(self._lru) > self.config.max_templates:
            self._evict()
        return tmpl

    def _evict(self) -> None:
        _, tmpl = self._lru.popitem(last=False)
        leaf = tmpl.leaf
        leaf.templates.remove(tmpl)
        leaf.version += 1
        if not leaf.templates and self._leaves.get(leaf.key) is leaf:
            del self._leaves[leaf.key]
        self._tombstone(tmpl.state(evicted=True))

    def _tombstone(self, state: TemplateState) -> None:
        self._changed.pop(state.template_id, None)
        tombs = self._tombstones
        tombs.pop(state.template_id, None)
        if len(tombs) >= self.config.max_tombstones:
            del tombs[next(iter(tombs))]
        tombs[state.template_id] = state
