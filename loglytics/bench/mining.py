"""Mining benchmark: grouping accuracy and throughput, loglytics vs Drain3.

For each LogHub system the same ``Content`` lines are mined by a fresh
loglytics :class:`~loglytics.mining.TemplateMiner` (default config,
``mine_columns`` in batches of 4096 lines, as ``loglytics mine`` and ingest
mine) and a fresh ``drain3.TemplateMiner()`` (default config,
``add_log_message`` per line), in the same process, alternating between the
two so machine noise hits both alike.  Each is timed ``--repeat`` times and
the best run is kept.  GA uses the final grouping of every line (merged ids
resolved to their survivor).

Usage: ``python -m loglytics.bench.mining [--repeat N] [--systems A,B]
[--loghub-dir DIR]``; the last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from loglytics.mining import TemplateMiner
from loglytics.mining.cli import BATCH_LINES, batched
from loglytics.mining.evaluation import SYSTEMS, grouping_accuracy, load_system, loghub_dir

__all__ = ["run"]


def _new_drain3() -> Any:
    """``drain3.TemplateMiner()`` as documented: default configuration.

    Its constructor looks for ``drain3.ini`` and prints a notice when there
    is none; that (and construction in general) is kept out of the timings.
    """
    from drain3 import TemplateMiner as Drain3Miner

    with contextlib.redirect_stdout(io.StringIO()):
        return Drain3Miner()


def _ours(lines: Sequence[str]) -> tuple[Callable[[], list[str]], float]:
    miner = TemplateMiner()
    ids: list[str] = []
    start = time.perf_counter()
    for batch in batched(lines, BATCH_LINES):
        ids += miner.mine_columns(batch).template_ids
    elapsed = time.perf_counter() - start
    return (lambda: [miner.resolve(i) for i in ids]), elapsed


def _ours_per_line(lines: Sequence[str]) -> tuple[Callable[[], list[str]], float]:
    miner = TemplateMiner()
    add = miner.add
    start = time.perf_counter()
    ids = [add(line).template_id for line in lines]
    elapsed = time.perf_counter() - start
    return (lambda: [miner.resolve(i) for i in ids]), elapsed


def _drain3(lines: Sequence[str]) -> tuple[Callable[[], list[int]], float]:
    miner = _new_drain3()
    add = miner.add_log_message
    start = time.perf_counter()
    ids = [add(line)["cluster_id"] for line in lines]
    elapsed = time.perf_counter() - start
    return (lambda: ids), elapsed


def run(args: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print a table and a final JSON line, return it."""
    parser = argparse.ArgumentParser(prog="loglytics bench mining", description=__doc__)
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per miner")
    parser.add_argument("--systems", default=",".join(SYSTEMS), help="comma-separated")
    parser.add_argument("--loghub-dir", type=Path, default=None)
    opts = parser.parse_args(args)
    root = opts.loghub_dir or loghub_dir()
    systems = [s for s in opts.systems.split(",") if s]
    # drain3 logs every new cluster and a missing drain3.ini; keep it quiet.
    logging.getLogger("drain3").setLevel(logging.ERROR)

    ga: dict[str, float] = {}
    ga_drain3: dict[str, float] = {}
    secs = {"ours": 0.0, "ours_add": 0.0, "drain3": 0.0}
    total = 0
    for name in systems:
        lines, truth = load_system(name, root)
        total += len(lines)
        ga[name] = grouping_accuracy(_ours(lines)[0](), truth)
        ga_drain3[name] = grouping_accuracy(_drain3(lines)[0](), truth)
        best = {key: float("inf") for key in secs}
        for _ in range(max(1, opts.repeat)):
            best["ours"] = min(best["ours"], _ours(lines)[1])
            best["drain3"] = min(best["drain3"], _drain3(lines)[1])
            best["ours_add"] = min(best["ours_add"], _ours_per_line(lines)[1])
        for key in secs:
            secs[key] += best[key]
        print(
            f"{name:<10} GA loglytics {ga[name]:.4f}  drain3 {ga_drain3[name]:.4f}   "
            f"lines/s loglytics {len(lines) / best['ours']:>9,.0f}  "
            f"drain3 {len(lines) / best['drain3']:>9,.0f}"
        )
    n = len(systems) or 1
    result: dict[str, Any] = {
        "systems": systems,
        "mean_ga": sum(ga.values()) / n,
        "drain3_mean_ga": sum(ga_drain3.values()) / n,
        "lines_per_s": total / secs["ours"] if secs["ours"] else 0.0,
        "lines_per_s_add": total / secs["ours_add"] if secs["ours_add"] else 0.0,
        "drain3_lines_per_s": total / secs["drain3"] if secs["drain3"] else 0.0,
        "ga": ga,
        "drain3_ga": ga_drain3,
        "repeat": opts.repeat,
        "lines": total,
    }
    result["speedup"] = (
        result["lines_per_s"] / result["drain3_lines_per_s"]
        if result["drain3_lines_per_s"]
        else 0.0
    )
    print(
        f"{'mean':<10} GA loglytics {result['mean_ga']:.4f}  "
        f"drain3 {result['drain3_mean_ga']:.4f}   "
        f"lines/s loglytics {result['lines_per_s']:>9,.0f}  "
        f"drain3 {result['drain3_lines_per_s']:>9,.0f}  speedup {result['speedup']:.2f}x "
        f"(per-line add(): {result['lines_per_s_add']:,.0f}/s)"
    )
    print(json.dumps(result, sort_keys=True))
    return result


if __name__ == "__main__":
    run()
