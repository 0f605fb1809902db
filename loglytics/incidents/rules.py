"""The grouping rules: when a finding joins an open incident instead of opening one.

A finding joins an open incident of its own tenant when one of these holds
(each rule is tried on every open incident, oldest first, before the next
rule is; the first incident that matches takes the finding):

1. **Repeat.** It fires on a template already in the incident (the exception
   that lasts seven windows is one incident, not seven).
2. **Same source, same family, same or next window.** It comes from a source
   of the incident, with a signal family the incident already fired on that
   source, in the same window as that firing or the one right after it (five
   endpoints' latency outliers in one window are one incident). Families:
   errors (`error`, `error_burst`, `http_5xx`), latency (`numeric_outlier`),
   resources (`numeric_trend`), volume (`spike`, `drop`); `new_template` only
   qualifies a pattern, so a finding with nothing else is of the `change` family.
   For joining, the two value checks are one family (`JOINED_FAMILIES`): a
   value far outside its range and a value steadily rising on the same source
   in the same or next window are one deviation seen by two checks (in the
   demo's latency spike five endpoints were outliers and a sixth "rising").
3. **Shared dependency, overlapping windows.** It comes from another source of
   the tenant, its window overlaps the incident's span (first window start to
   last window end), and its templates (or, where a template masked the
   name, its exemplar lines) name a component or dependency that the
   incident's do: a name-like token such as `orders-db`, `inventory-svc`,
   `db.pool` or a `host:port` (a database outage seen by two services). Only
   failing findings (the errors family) name dependencies: a latency
   outlier's endpoint path is not a dependency.

Anything else opens a new incident. Why these and no more: each is a fact the
rules already state (template ids, sources, signal kinds, windows, the
template text), so grouping needs no model and replays group identically.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from loglytics.schemas import Finding, SignalKind

Family = str

SIGNAL_FAMILIES: dict[SignalKind, Family] = {
    "error": "errors",
    "error_burst": "errors",
    "http_5xx": "errors",
    "numeric_outlier": "latency",
    "numeric_trend": "resources",
    "spike": "volume",
    "drop": "volume",
    "new_template": "change",
}
# Kinds that qualify a pattern without saying what kind of problem it is.
QUALIFIERS: frozenset[SignalKind] = frozenset({"new_template"})
NAMING_FAMILY: Family = "errors"
# Families that join each other under rule 2 (each family joins itself).
JOINED_FAMILIES: tuple[frozenset[Family], ...] = (frozenset({"latency", "resources"}),)

# A name-like token: words joined by - _ . (orders-db, db.pool, CheckoutController.apply),
# optionally with a :port. Paths (with /) and masked variables (<*>) are not names.
_TOKEN = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_.][A-Za-z0-9]+)+(?::\d+)?|[A-Za-z][\w-]*:\d+")
_PORT = re.compile(r":\d+$")
# Tokens shaped like names that name nothing (versions, file names, abbreviations).
_NOT_NAMES = re.compile(
    r"^(?:v?\d[\w.]*|e\.g|i\.e|etc|[\w-]+\.(?:log|txt|java|py|go|js|json|xml|yml|yaml))$",
    re.IGNORECASE,
)


def signal_kinds(finding: Finding) -> list[SignalKind]:
    """The finding's signal kinds, in the order they fired, once each."""
    return list(dict.fromkeys(s.kind for s in finding.evidence.signals))


def families(finding: Finding) -> set[Family]:
    """What kinds of problem the finding is about (see the module docstring)."""
    kinds = signal_kinds(finding)
    named = {SIGNAL_FAMILIES[k] for k in kinds if k not in QUALIFIERS}
    return named or {"change"}


def joinable_families(family: Family) -> set[Family]:
    """The families a firing of `family` joins under rule 2: itself and its group's."""
    return {family}.union(*(group for group in JOINED_FAMILIES if family in group))


def fired_key(source: str, family: Family) -> str:
    """The key an incident's latest firing per source and family is kept under."""
    return f"{source}|{family}"


def dependency_names(finding: Finding) -> set[str]:
    """Components and dependencies the finding's templates name (lower case, port dropped).

    Exemplars are read too, since a template may have masked a name that held
    digits (`orders-db:5432` becomes `<*>`). Only failing findings name any.
    """
    if NAMING_FAMILY not in families(finding):
        return set()
    return names_in([*finding.evidence.templates, *finding.evidence.exemplars])


def names_in(texts: Iterable[str]) -> set[str]:
    """The name-like tokens of some texts (see `_TOKEN`)."""
    found: set[str] = set()
    for text in texts:
        for match in _TOKEN.finditer(text):
            name = _PORT.sub("", match.group(0)).strip("._-").lower()
            if len(name) >= 3 and not _NOT_NAMES.match(name):
                found.add(name)
    return found


def same_or_next_window(window_start: float, fired_start: float, window_seconds: float) -> bool:
    """A window is the firing's own or the one after it (or the one before: late arrivals)."""
    return abs(window_start - fired_start) <= window_seconds * 1.01


def windows_overlap(
    window_start: float, window_end: float, span_start: float, span_end: float
) -> bool:
    """The window shares some time with the incident's span."""
    return window_start < span_end and window_end > span_start
