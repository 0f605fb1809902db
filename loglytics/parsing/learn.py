"""Learning a source's header from its first lines: where the stamp is, which fields follow.

The rule the issue states: the message is what follows the header fields, and
the header ends where the lines of one source stop having a fixed field
structure. So the learner looks at many lines at once, never at one:

1. every stamp in the head of every line is found (:class:`StampScanner`), and
   the shape and position most lines share is the source's stamp; where two
   stamps share the lines, the more precise one wins;
2. the text after the stamp is cut into tokens (bracketed groups, quoted
   strings and other stamps stay whole) and each token gets a kind (level,
   number, bracket, qualified name, separator, word ending in ``:``...);
3. token positions are header fields while the lines agree on them: a kind
   shared by nearly all lines, a column padded by spaces, a word followed by
   a separator, or everything up to a ``component:`` that sits at one position
   in nearly all lines. The first position where the lines disagree is where
   the message starts.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Final

from loglytics.parsing.header import Field, HeaderSpec
from loglytics.parsing.levels import LEVEL_WORDS
from loglytics.parsing.stamps import SHAPES, StampHit, StampScanner, is_family, resolve_order

HEAD_CHARS: Final = 256
SHARE: Final = 0.9
"""Share of a source's header lines that must agree for a position to be a field."""
LEVEL_SHARE: Final = 0.6
"""Levels are a closed vocabulary: a looser share still cannot mistake a word for one."""
NEAR_TIE: Final = 0.6
"""A stamp on this share of the lines of the most common one competes with it on precision."""
MAX_FIELDS: Final = 8
MAX_BRIDGED: Final = 2
"""Words allowed between the last fixed field and a ``component:`` (host, node)."""
MAX_LEVEL_AT: Final = 3
"""The furthest position a level field is looked for (BGL: node, type, component, level)."""

_SEPS: Final = frozenset({"-", "--", "---", "|", ":", "::", "=>", "->", ">", "»"})
_CLOSERS: Final = {"[": "]", "(": ")", "{": "}", "<": ">", '"': '"'}
_DATE: Final = re.compile(r"\d{4}[-/.]\d\d?[-/.]\d\d?")
_QUALIFIED: Final = re.compile(r"[A-Za-z_$][\w$-]*(?:\.[\w$-]+){2,}(?:\(\))?")
_LEVEL_CORE: Final = re.compile(r"([\[(<]?) *([A-Za-z]{1,12}) *([\])>]?:?)")
_NOT_COMPONENT: Final = re.compile(r"https?:|\d+:\d+:?|.*://.*")
_HTTP_REQUEST: Final = re.compile(r'"[A-Z]{3,10} [^"]{0,2048}" [1-5]\d\d\b')
# Lines that continue an event (traces, dumps, wrapped JSON): not counted when judging how
# many of a source's lines carry its stamp.
_CONTINUATION: Final = re.compile(
    r"\s|$|at |Caused by|Suppressed:|\.\.\. \d+|Traceback|During handling|The above exception"
    r"|panic: |fatal error: |goroutine \d|exit status|[\w./*()-]+\(.*\)$|[}\]]"
    r"|[\w$.]+(?:Exception|Error)\b"
)
_STRUCTURAL: Final = frozenset(
    {"num", "bracket", "paren", "brace", "angle", "date", "stamp", "qualified", "sep", "close"}
)


@dataclass(frozen=True, slots=True)
class Token:
    """A whitespace-separated piece of a line's head, with what it looks like."""

    text: str
    kind: str
    pad: int
    """Whitespace after it (2+ marks a padded column)."""
    colon: bool
    """It ends in ``:`` the way a ``component:`` does."""
    shape: str = ""
    """For ``stamp`` tokens: the stamp's shape."""


def classify(tok: str) -> str:
    """The kind of one token (see the module docstring)."""
    if tok in _SEPS:
        return "sep"
    if _level_parts(tok) is not None:
        return "level"
    if tok.isdigit():
        return "num"
    if len(tok) == 1:
        return "letter" if tok in "VDIWEFAC" else "sym" if tok in ".*#" else "word"
    if _DATE.fullmatch(tok):
        return "date"
    first, last = tok[0], tok[-1]
    if first in "[({<" and last == _CLOSERS[first]:
        return {"[": "bracket", "(": "paren", "{": "brace", "<": "angle"}[first]
    if first == '"':
        return "quoted"
    if last == "]" and "[" not in tok:
        return "close"
    if _QUALIFIED.fullmatch(tok):
        return "qualified"
    return "word"


def _level_parts(tok: str) -> tuple[str, str] | None:
    """(open, close) around a level word (``[INFO]`` -> ``("[", "]")``), or ``None``."""
    m = _LEVEL_CORE.fullmatch(tok)
    if m is None or len(m[2]) < 3 or m[2].upper() not in LEVEL_WORDS:
        return None
    return m[1], m[3]


def tokenize(text: str, stamps: dict[int, tuple[int, str]] | None = None) -> list[Token]:
    """The first tokens of ``text``; ``stamps`` maps a start offset to (end, shape) of a stamp."""
    out: list[Token] = []
    i, n = 0, min(len(text), HEAD_CHARS)
    while i < n and len(out) < MAX_FIELDS + 2:
        while i < n and text[i] in " \t":
            i += 1
        if i >= n:
            break
        start = i
        stamp = (stamps or {}).get(i)
        i = stamp[0] if stamp is not None else _token_end(text, i, n)
        j = i
        while j < len(text) and text[j] in " \t":
            j += 1
        tok = text[start:i]
        if tok == ":" and out and not out[-1].colon and out[-1].kind in ("word", "qualified"):
            # `tag   :` (logcat pads tags, Spring Boot pads loggers): the colon ends the tag.
            out[-1] = replace(out[-1], colon=True, pad=j - i)
            i = j
            continue
        colon = tok.endswith(":") and len(tok) > 1 and not _NOT_COMPONENT.fullmatch(tok)
        kind = "stamp" if stamp is not None else classify(tok)
        out.append(Token(tok, kind, j - i, colon and kind != "quoted", stamp[1] if stamp else ""))
        i = j
    return out


def _token_end(text: str, i: int, n: int) -> int:
    """End of the token at ``i``: the next blank outside brackets and quotes (bounded)."""
    stack: list[str] = []
    start = i
    while i < n and i - start < 512:
        c = text[i]
        if stack:
            if c == stack[-1]:
                stack.pop()
            elif c in _CLOSERS and c != '"' and stack[-1] != '"':
                stack.append(_CLOSERS[c])
        elif c in " \t":
            break
        elif c in _CLOSERS:
            stack.append(_CLOSERS[c])
        i += 1
    return i


@dataclass(slots=True)
class _Choice:
    key: tuple[str, int, str]
    hits: dict[int, StampHit]
    """Line index -> the chosen stamp's hit on that line."""
    others: dict[int, list[StampHit]]
    """Line index -> the line's other stamps."""
    second: bool


def _opener(head: str, start: int) -> str:
    """The non-blank text glued to the left of a stamp (``[`` or ``time=``)."""
    i = start
    while i > 0 and head[i - 1] not in " \t" and start - i < 16:
        i -= 1
    return head[i:start]


def _stamp_tokens(hits: Sequence[StampHit], offset: int) -> dict[int, tuple[int, str]]:
    """Other stamps of a line as whole tokens, at offsets relative to ``offset``."""
    return {h.start - offset: (h.end - offset, h.shape) for h in hits if h.start >= offset}


def _choose_stamp(heads: Sequence[str], scans: Sequence[list[StampHit]]) -> _Choice | None:
    """The (shape, position, opener) most header lines share; the most precise among near ties."""
    counts: Counter[tuple[str, int, str]] = Counter()
    found: dict[tuple[str, int, str], dict[int, StampHit]] = {}
    for i, (head, hits) in enumerate(zip(heads, scans, strict=True)):
        for hit in hits:
            opener = _opener(head, hit.start)
            before = head[: hit.start - len(opener)]
            anchor = len(tokenize(before, _stamp_tokens(hits, 0)))
            key = (hit.shape, anchor, re.sub(r"\d+", "#", opener))
            rest = key[2].removeprefix("<#>") if not anchor else key[2]
            if "#" in rest:
                continue  # digits glued to it (`00000001@2026/...`): part of a message word
            if i not in found.setdefault(key, {}):
                found[key][i] = hit
                counts[key] += 1
    candidates = sum(1 for h in heads if not _CONTINUATION.match(h))
    if not counts or max(counts.values()) < max(1, candidates // 2):
        return None
    top = max(counts.values())
    near = [k for k, c in counts.items() if c >= NEAR_TIE * top]

    def rank(key: tuple[str, int, str]) -> tuple[tuple[int, int, int, int], int]:
        ranks = Counter(h.rank for h in found[key].values())
        return ranks.most_common(1)[0][0], -key[1]

    best = max(near, key=rank)
    # Preferred over the syslog stamp that leads the line: the named syslog layouts would
    # take the less precise one, so this header must be tried before them.
    second = any(k[1] < best[1] and k[0] == "syslog" for k in near)
    chosen = found[best]
    others = {i: [h for h in scans[i] if h is not hit] for i, hit in chosen.items()}
    return _Choice(best, chosen, others, second)


def _share(toks: Sequence[Sequence[Token]], j: int, pred: Callable[[Token], bool]) -> float:
    return sum(1 for t in toks if len(t) > j and pred(t[j])) / max(1, len(toks))


def _mode(values: Sequence[str]) -> tuple[str, float]:
    if not values:
        return "", 0.0
    value, count = Counter(values).most_common(1)[0]
    return value, count / len(values)


def _level_field(toks: Sequence[Sequence[Token]], j: int) -> Field:
    wraps = [_level_parts(t[j].text) or ("", "") for t in toks if len(t) > j]
    (open_, close), _ = Counter(wraps).most_common(1)[0]
    return Field("level", open_, close)


def _level_position(toks: Sequence[Sequence[Token]]) -> tuple[int, str] | None:
    """Where the level sits among the first positions, and as what kind of field."""
    for j in range(MAX_LEVEL_AT + 1):
        if _share(toks, j, lambda t: t.kind == "level") >= LEVEL_SHARE:
            return j, "level"
        if j >= 3:
            continue  # single letters and symbols only right after the stamp
        letters = {t[j].text for t in toks if len(t) > j and t[j].kind == "letter"}
        if _share(toks, j, lambda t: t.kind == "letter") >= SHARE and (
            len(letters) > 1 or letters & set("IWEDV")
        ):
            return j, "letter"
        symbols = {t[j].text for t in toks if len(t) > j and t[j].text in (".", "*", "#", "-")}
        if _share(toks, j, lambda t: t.text in (".", "*", "#", "-")) >= SHARE and symbols - {"-"}:
            return j, "symbol"
    return None


def _colon_position(toks: Sequence[Sequence[Token]]) -> int | None:
    """The position of the first ``word:`` when nearly all lines have it at the same place."""
    firsts = [str(next((k for k, t in enumerate(line) if t.colon), -1)) for line in toks]
    value, share = _mode(firsts)
    k = int(value) if value else -1
    if k < 0 or k > MAX_FIELDS - 1 or share < SHARE:
        return None
    return k


def _kind_at(toks: Sequence[Sequence[Token]], j: int) -> tuple[str, float]:
    return _mode([t[j].kind for t in toks if len(t) > j] + [""] * sum(len(t) <= j for t in toks))


def _field_of(toks: Sequence[Sequence[Token]], j: int, kind: str) -> Field:
    if kind == "sep":
        return Field("sep", _mode([t[j].text for t in toks if len(t) > j])[0])
    if kind == "stamp":
        return Field("stamp2", _mode([t[j].shape for t in toks if len(t) > j])[0])
    if kind in ("qualified", "letter", "sym", "quoted", "level"):
        return Field("word")
    return Field(kind)


def learn_fields(toks: Sequence[Sequence[Token]]) -> tuple[list[Field], bool]:
    """The header fields of tokenised line heads, and whether Rust spans come before ``:``."""
    level = _level_position(toks)
    strong_level = level is not None and (
        _share(toks, level[0], lambda t: t.kind == "level") >= SHARE
    )
    colon_k = _colon_position(toks)
    if colon_k is not None:
        loose = sum(1 for j in range(colon_k) if _kind_at(toks, j)[0] not in _STRUCTURAL)
        if level is not None and level[0] < colon_k:
            loose -= 1
        if loose > MAX_BRIDGED:
            colon_k = None
    fields: list[Field] = []
    j = 0
    while j < MAX_FIELDS:
        if level is not None and j == level[0]:
            fields.append(_level_field(toks, j) if level[1] == "level" else Field(level[1]))
            j += 1
            if colon_k is not None and j > colon_k:
                break
            continue
        if colon_k is not None and j <= colon_k:
            fields.append(
                Field("component") if j == colon_k else _field_of(toks, j, _kind_at(toks, j)[0])
            )
            j += 1
            if j > colon_k:
                break
            continue
        kind, share = _kind_at(toks, j)
        if kind == "num" and level is not None and j > level[0] and not _fixed_at(toks, j + 1):
            break  # a number right after the level, then words: the message's first word
        if share >= SHARE and kind in _STRUCTURAL:
            fields.append(_field_of(toks, j, kind))
            j += 1
            if kind == "close":
                break
            continue
        if _share(toks, j + 1, lambda t: t.kind == "sep") >= SHARE and j + 1 < MAX_FIELDS:
            fields += [Field("word"), _field_of(toks, j + 1, "sep")]
            j += 2
            continue
        if _share(toks, j, lambda t: t.pad >= 2) >= SHARE and _share(toks, j + 1, bool) >= SHARE:
            fields.append(Field("word"))
            j += 1
            continue
        if level is not None and j < level[0] and strong_level:
            fields.append(Field("word"))  # words up to a level nearly every line has
            j += 1
            continue
        sep = _nearby_sep(toks, j)
        if sep is not None:  # `app.exe - ...` and `app.exe *64 - ...` in one source
            fields += [Field("word"), Field("sep", sep)]
        break
    spans = colon_k is not None and any(len(t) > colon_k and "{" in t[colon_k].text for t in toks)
    return fields, spans


def _nearby_sep(toks: Sequence[Sequence[Token]], j: int) -> str | None:
    """A separator nearly every line has one to three tokens after a name at ``j``, if one does."""
    kind, share = _kind_at(toks, j)
    if kind not in ("word", "qualified") or share < SHARE:
        return None  # not a program or logger name (a quoted request, a number)
    found = []
    for line in toks:
        seps = [t.text for t in line[j + 1 : j + 4] if t.kind == "sep" and t.text != ":"]
        # A separator written more than once is a placeholder (IIS, access logs: `- 80 -`).
        once = seps and sum(t.text == seps[0] for t in line[j:]) == 1
        found.append(seps[0] if once else "")
    value, share = _mode(found)
    return value if value and share >= SHARE else None


def _fixed_at(toks: Sequence[Sequence[Token]], j: int) -> bool:
    """Nearly every line has a header-like token at ``j`` (structural, or ending in ``:``)."""
    kind, share = _kind_at(toks, j)
    return (share >= SHARE and kind in _STRUCTURAL) or _share(toks, j, lambda t: t.colon) >= SHARE


def _pipe_fields(rests: Sequence[str]) -> list[Field]:
    """Pipe-separated header fields: as many as nearly every line has."""
    counts = sorted(r[:HEAD_CHARS].count("|") for r in rests)
    k = counts[int(len(counts) * (1 - SHARE))] if counts else 0
    fields: list[Field] = []
    for j in range(min(k, MAX_FIELDS)):
        values = [r.split("|")[j].strip() for r in rests if r.count("|") > j]
        kinds = [classify(v) if v else "word" for v in values]
        kind, share = _mode(kinds)
        if kind == "level" and share >= LEVEL_SHARE:
            fields.append(Field("level"))
        elif kind == "num" and share >= SHARE:
            fields.append(Field("num"))
        else:
            fields.append(Field("word"))
    return fields


def _prefix_field(toks: Sequence[Sequence[Token]], j: int) -> Field:
    if _share(toks, j, lambda t: t.kind == "level") >= LEVEL_SHARE:
        return _level_field(toks, j)
    kind, share = _kind_at(toks, j)
    if share >= SHARE and kind in ("bracket", "paren", "brace", "angle", "stamp", "num", "date"):
        return _field_of(toks, j, kind)
    return Field("word")


def _learn_stampless(heads: Sequence[str]) -> HeaderSpec | None:
    """A header without a stamp is accepted only when it leads with a level (``[WARN] ...``)."""
    toks = [tokenize(h) for h in heads if not _CONTINUATION.match(h)]
    if not toks:
        return None
    fields, spans = learn_fields(toks)
    if not fields or fields[0].kind not in ("level", "letter"):
        return None
    return HeaderSpec(stamp=None, frac="", fields=tuple(fields), spans=spans)


def learn_header(lines: Sequence[str], scanner: StampScanner) -> HeaderSpec | None:
    """The header ``lines`` share, or ``None`` when they share none worth a layout."""
    # JSON objects have their own layout: their keys, not positions, say what a field is.
    heads = [ln[:HEAD_CHARS] for ln in lines if ln.strip() and not ln.startswith("{")]
    if not heads:
        return None
    choice = _choose_stamp(heads, [scanner.scan(h) for h in heads])
    if choice is None:
        return _learn_stampless(heads)
    shape, anchor, opener_key = choice.key
    settled = True
    if is_family(shape):
        resolved, settled = resolve_order(shape, [h.fields for h in choice.hits.values()])
        if resolved is None:
            return None
        shape = resolved
    pri = opener_key.startswith("<#>")  # `<6>[ 1.234567] ...`: a PRI, then the stamp's opener
    rows = sorted(choice.hits.items())
    prefix_toks = []
    closes = []
    for i, hit in rows:
        head = heads[i]
        before = head[: hit.start - len(_opener(head, hit.start))]
        prefix_toks.append(tokenize(before, _stamp_tokens(choice.others[i], 0)))
        closes.append(re.match(r"[\]),;:>]{0,3}", head[hit.end :]).group())  # type: ignore[union-attr]
    close, close_share = _mode(closes)
    if close_share < SHARE:
        close = ""
    rests = [heads[i][hit.end + len(close) :] for i, hit in rows]
    others = [_stamp_tokens(choice.others[i], hit.end + len(close)) for i, hit in rows]
    pipes = _share_of(rests, lambda r: r.lstrip(" \t").startswith("|")) >= SHARE
    spans = False
    if pipes:
        fields = _pipe_fields([r.lstrip(" \t")[1:] for r in rests])
    else:
        fields, spans = learn_fields([tokenize(r, o) for r, o in zip(rests, others, strict=True)])
    hits = [hit for _, hit in rows]
    zones = [h.zone for h in hits if h.zone]
    prefix = [_prefix_field(prefix_toks, j) for j in range(anchor)]
    if SHAPES[shape].time_only:
        shape = _date_apart(shape, prefix, fields)
    spec = HeaderSpec(
        stamp=shape,
        frac=":" if any(h.frac_sep == ":" for h in hits) else ".",
        zone=_mode(zones)[0] if zones else "",
        stamp_open=opener_key.removeprefix("<#>") if pri else opener_key,
        stamp_close=close,
        prefix=tuple(prefix),
        fields=tuple(fields),
        pri=pri,
        pipes=pipes,
        spans=spans,
        order_settled=settled,
        second_stamp=choice.second,
    )
    if not spec.has_level and _share_of(rests, _HTTP_REQUEST.search) >= 0.5:
        spec = replace(spec, http_level=True)
    return spec


def _date_apart(shape: str, prefix: list[Field], fields: list[Field]) -> str:
    """A time-of-day stamp with a year-first date field elsewhere: read the two together.

    Rewrites that field (in place) to the one the layout reads the date from.
    """
    for group in (prefix, fields):
        for i, field in enumerate(group):
            if field.kind == "date":
                group[i] = Field("date", "stamp")
                return "time_dated"
    return shape


def _share_of(texts: Sequence[str], pred: Callable[[str], object]) -> float:
    return sum(1 for t in texts if pred(t)) / max(1, len(texts))
