"""Micro-benchmark: ``python -m loglytics.parsing`` prints steady-state lines/s on Loghub.

``python -m loglytics.parsing formats DIR`` prints the per-format accuracy table of
the samples in DIR instead (``tests/data/formats``; see ``loglytics.parsing.accuracy``).

Each system gets its own LineParser (one per source, as in ingest); the first
pass warms detection and the timestamp caches, then the best of several timed
passes is reported, per system and for the whole mix.
"""

from __future__ import annotations

import sys
import time

from loglytics.parsing.loghub import SYSTEMS, load, loghub_dir
from loglytics.parsing.parser import LineParser


def _best_seconds(parser: LineParser, lines: list[str], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        parser.parse_many(lines)
        best = min(best, time.perf_counter() - start)
    return best


def main(repeats: int = 5) -> int:
    """Run the benchmark; returns a process exit code."""
    root = loghub_dir()
    if root is None:
        print("Loghub data not found: set LOGHUB_DIR", file=sys.stderr)
        return 1
    total_lines = 0
    total_seconds = 0.0
    for system in SYSTEMS:
        lines = load(system, root).lines
        parser = LineParser(default_year=2005)
        parser.parse_many(lines)  # detection + cache warm-up
        seconds = _best_seconds(parser, lines, repeats)
        total_lines += len(lines)
        total_seconds += seconds
        print(f"{system:<10} {parser.format or '-':<13} {len(lines) / seconds:>10,.0f} lines/s")
    print(f"{'mix':<24} {total_lines / total_seconds:>10,.0f} lines/s ({total_lines} lines)")
    return 0


def formats(folder: str) -> int:
    """Print the accuracy table of the samples in ``folder``."""
    from pathlib import Path

    from loglytics.parsing.accuracy import table

    for row in table(Path(folder)):
        print(row)
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "formats":
        raise SystemExit(formats(sys.argv[2]))
    raise SystemExit(main())
