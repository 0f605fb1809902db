"""LineParser: format detection once per source, then one regex match per line."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from typing import Any, Final

from loglytics.parsing.formats import DETECTION_ORDER, FORMATS
from loglytics.parsing.header import HeaderSpec, is_trivial
from loglytics.parsing.layouts import CustomLayout, Layout
from loglytics.parsing.learn import learn_header
from loglytics.parsing.learned import AUTO, LearnedLayout
from loglytics.parsing.levels import guess_level
from loglytics.parsing.model import ParsedColumns, ParsedLine
from loglytics.parsing.stamps import StampScanner
from loglytics.parsing.timestamps import TimestampCache

# Lines run through full detection before the parser commits to a layout.
# One line can be ambiguous (a log4j line whose thread name has odd brackets
# only fits the generic ``iso`` layout); a short vote makes the choice robust.
PROBE_LINES: Final = 8
# Consecutive lines that must fit another layout (and not the current one)
# before the parser switches. Switching on a single odd line would be costly:
# a generic layout such as ``iso`` also fits every later log4j line, so the
# parser would never come back and components would be lost for good.
SWITCH_AFTER: Final = 3
# Line heads the general detector learns a header from (see loglytics.parsing.learn),
# and how much of each is kept: enough for the final vote to see whole JSON lines.
LEARN_LINES: Final = 32
SAMPLE_CHARS: Final = 2048
STATE_VERSION: Final = 1
NAMED_SHARE: Final = 0.9
# Named layouts that do not make learning unnecessary (see LineParser._named_explain).
_LOOSE_NAMED: Final = frozenset({"iso", "syslog", "python_basic"})


def raw_line(line: str) -> ParsedLine:
    """The fallback for a line no layout explains: keep the text, guess the level."""
    return ParsedLine(None, guess_level(line), None, line, "raw")


class LineParser:
    """One per source: detects the format on the first lines and then sticks to it.

    Re-detects when a line no longer matches, so the steady state costs one
    compiled regex match. Detection tries the named layouts and a header
    learned from the source's first lines (:mod:`loglytics.parsing.learn`,
    ``format == "auto"``), which explains what no named layout does and is
    preferred over the generic ``iso`` layout whenever it finds more header.
    ``format`` forces a named layout (``"auto"``: the learned header only) and
    ``pattern`` a user regex with named groups (``timestamp``, ``level``,
    ``component``, ``message``): the per-source override when detection is
    not wanted. Lines that fit nothing come back as ``format="raw"``;
    :meth:`parse` never raises. :meth:`state` and :meth:`from_state` carry
    what was detected across a restart.
    """

    __slots__ = (
        "_auto_only",
        "_cache",
        "_forced",
        "_layout",
        "_learned",
        "_misses",
        "_order",
        "_probe",
        "_sample",
        "_scanner",
        "_votes",
    )

    def __init__(
        self,
        format: str | None = None,
        pattern: str | None = None,
        *,
        default_year: int | None = None,
        arrival: float | None = None,
    ) -> None:
        if format is not None and pattern is not None:
            raise ValueError("give either format or pattern, not both")
        year = default_year if default_year is not None else time.gmtime().tm_year
        self._cache = TimestampCache(year, arrival if arrival is not None else time.time())
        self._layout: Layout | None = None
        self._forced = False
        self._auto_only = format == AUTO
        if pattern is not None:
            self._layout = CustomLayout(pattern)
            self._forced = True
        elif format is not None and not self._auto_only:
            layout = FORMATS.get(format)
            if layout is None:
                known = ", ".join((*FORMATS, AUTO))
                raise ValueError(f"unknown format {format!r}; known: {known}")
            self._layout = layout
            self._forced = True
        self._probe = 0 if self._forced else PROBE_LINES
        self._votes: Counter[str] = Counter()
        self._misses = 0
        self._sample: list[str] = []
        self._learned: LearnedLayout | None = None
        self._scanner: StampScanner | None = None
        self._order: tuple[Layout, ...] = () if self._auto_only else DETECTION_ORDER

    @property
    def format(self) -> str | None:
        """Name of the layout currently in use (``None`` before any line matched)."""
        return None if self._layout is None else self._layout.name

    @property
    def dates_assumed(self) -> bool:
        """The source's stamps carry no date: the arrival day stands in (ingest flags them)."""
        layout = self._layout
        return isinstance(layout, LearnedLayout) and layout.dates_assumed

    def parse_json(self, text: str) -> ParsedLine | None:
        """``text`` (a pretty-printed object joined back from its lines) as one JSON event."""
        return FORMATS["json"].parse(text, self._cache)

    def set_arrival(self, arrival: float) -> None:
        """When the next lines arrived: the day of stamps that carry none."""
        self._cache.arrival = arrival

    def parse(self, line: str) -> ParsedLine:
        """Parse one line (trailing whitespace and newline are dropped)."""
        if self._probe:
            self._observe((line,))
        return self._parse(line.rstrip())

    def _parse(self, line: str) -> ParsedLine:
        layout = self._layout
        if layout is not None and not self._probe:
            parsed = layout.parse(line, self._cache)
            if parsed is not None:
                if self._misses:
                    self._misses = 0
                return parsed
            if self._forced:
                return raw_line(line)
            return self._redetect(line)
        return self._detect(line)

    def parse_many(self, lines: Sequence[str]) -> list[ParsedLine]:
        """Parse a batch; same results as calling :meth:`parse` on each line."""
        if self._probe:
            self._observe(lines[:LEARN_LINES])
        parse = self._parse
        return [parse(line.rstrip()) for line in lines]

    def parse_columns(self, lines: Sequence[str]) -> ParsedColumns | None:
        """:meth:`parse_many` as columns, in one pass, once the layout is settled.

        ``None`` while detection is still probing, for layouts without a batch
        form, and whenever a line does not fit the current layout: the caller
        then parses line by line, which also runs re-detection.
        """
        layout = self._layout
        if layout is None or self._probe:
            return None
        columns = layout.parse_columns(lines, self._cache)
        if columns is not None:
            self._misses = 0
        return columns

    def _observe(self, lines: Sequence[str]) -> None:
        """Probe phase: keep the first line heads and (re)learn the source's header from them.

        Relearning on every new head is cheap (a few dozen short lines) and
        happens only until the probe ends; a batch caller learns once from
        its first :data:`LEARN_LINES` lines.
        """
        room = LEARN_LINES - len(self._sample)
        if room <= 0 or not lines:
            return
        self._sample.extend(line.rstrip()[:SAMPLE_CHARS] for line in lines[:room])
        if not self._auto_only and self._named_explain(self._sample):
            self._use_learned(None)
            return
        if self._scanner is None:
            self._scanner = StampScanner()
        spec = learn_header(self._sample, self._scanner)
        self._use_learned(spec)

    def _named_explain(self, sample: Sequence[str]) -> bool:
        """Nearly every sampled line fits one specific named layout: nothing to learn.

        Learning costs a few milliseconds per source; a source in a layout the
        named ones already read (all of the Loghub eight, the usual Java and
        Python ones) does not pay them. ``iso`` is too loose to stand for a
        header, and a syslog line may carry a more precise stamp after its own.
        """
        cache = self._cache
        counts: Counter[str] = Counter()
        for line in sample:
            for layout in DETECTION_ORDER:
                if layout.parse(line, cache) is not None:
                    counts[layout.name] += 1
                    break
        if not counts:
            return False
        name, count = counts.most_common(1)[0]
        return name not in _LOOSE_NAMED and count >= NAMED_SHARE * len(sample)

    def _use_learned(self, spec: HeaderSpec | None) -> None:
        """Put the learned layout in the detection order: before ``iso``, first for two stamps."""
        keep = spec is not None and (self._auto_only or not is_trivial(spec))
        learned = LearnedLayout(spec) if spec is not None and keep else None
        if self._layout is self._learned:
            self._layout = learned
        self._learned = learned
        named = () if self._auto_only else DETECTION_ORDER
        if learned is None:
            self._order = named
        elif learned.spec.second_stamp:
            self._order = (named[0], learned, *named[1:]) if named else (learned,)
        else:
            cut = next((i for i, lay in enumerate(named) if lay.name == "iso"), len(named))
            self._order = (*named[:cut], learned, *named[cut:])

    def _first_match(self, line: str) -> tuple[ParsedLine, Layout | None]:
        """Parse with the first layout in detection order that fits, else as raw."""
        cache = self._cache
        for layout in self._order:
            parsed = layout.parse(line, cache)
            if parsed is not None:
                return parsed, layout
        return raw_line(line), None

    def _by_name(self, name: str) -> Layout:
        if name == AUTO and self._learned is not None:
            return self._learned
        return FORMATS[name]

    def _detect(self, line: str) -> ParsedLine:
        """Probe phase: full detection per line; the layout seen most often wins."""
        parsed, layout = self._first_match(line)
        if layout is not None:
            self._probe -= 1
            self._votes[layout.name] += 1
            self._layout = self._by_name(self._votes.most_common(1)[0][0])
            if not self._probe:
                self._settle()
        return parsed

    def _settle(self) -> None:
        """End of the probe: the layout most of the sampled lines fit first, in the final order.

        The learned header may have changed while the probe ran (it is relearned
        as lines arrive), so the votes of the first lines are taken again over
        the whole sample with the final detection order.
        """
        votes: Counter[str] = Counter()
        for head in self._sample:
            _, layout = self._first_match(head)
            if layout is not None:
                votes[layout.name] += 1
        if votes:
            self._layout = self._by_name(votes.most_common(1)[0][0])
        self._votes.clear()
        self._sample.clear()
        if self._layout is not self._learned:
            self._use_learned(None)  # a named layout won: detection as it always was

    def _redetect(self, line: str) -> ParsedLine:
        """The current layout missed: parse this line by detection, switch if it keeps missing.

        Lines no layout fits (stack traces, wrapped text) neither count nor reset
        the miss streak, so a source that changed format mid-stream still switches.
        """
        parsed, layout = self._first_match(line)
        if layout is not None:
            self._misses += 1
            if self._misses >= SWITCH_AFTER:
                self._layout = layout
                self._misses = 0
        return parsed

    def state(self) -> dict[str, Any]:
        """What detection settled on, as a JSON-ready dict (the source's state row keeps it)."""
        out: dict[str, Any] = {"v": STATE_VERSION}
        layout = self._layout
        if layout is not None and not self._forced:
            out["layout"] = layout.name
        if self._learned is not None:
            out["header"] = self._learned.spec.to_dict()
        if self._probe:
            out["probe"] = self._probe
            out["votes"] = dict(self._votes)
            out["sample"] = list(self._sample)
        return out

    @classmethod
    def from_state(
        cls,
        state: dict[str, Any] | None,
        format: str | None = None,
        *,
        default_year: int | None = None,
    ) -> LineParser:
        """A parser that continues where :meth:`state` left off; a fresh one if it cannot.

        A state this code did not write (another version, a damaged row) is
        not an error: detection simply starts over.
        """
        parser = cls(format, default_year=default_year)
        if not state or parser._forced:
            return parser
        try:
            parser._restore(state)
        except (KeyError, TypeError, ValueError):
            return cls(format, default_year=default_year)
        return parser

    def _restore(self, state: dict[str, Any]) -> None:
        if state.get("v") != STATE_VERSION:
            raise ValueError("parser state version")
        header = state.get("header")
        self._use_learned(HeaderSpec.from_dict(header) if header else None)
        name = state.get("layout")
        self._layout = self._by_name(name) if name else None
        self._probe = int(state.get("probe", 0))
        self._votes = Counter({str(k): int(v) for k, v in state.get("votes", {}).items()})
        self._sample = [str(h)[:SAMPLE_CHARS] for h in state.get("sample", ())][:LEARN_LINES]


def parse_line(line: str) -> ParsedLine:
    """Stateless convenience: detect and parse a single line.

    Builds a throw-away parser, so it pays for detection every time; use a
    :class:`LineParser` per source on any hot path.
    """
    return LineParser().parse(line)
