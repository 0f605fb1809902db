"""LogHub grouping-accuracy helpers shared by the tests and the benchmark.

The data set is read in place (never copied into the repository): from
``$LOGHUB_DIR`` when set, else ``<repo>/../shared/data/loghub``.
"""

from __future__ import annotations

import csv
import os
from collections import defaultdict
from collections.abc import Hashable, Sequence
from pathlib import Path

__all__ = ["SYSTEMS", "grouping_accuracy", "load_system", "loghub_dir"]

SYSTEMS: tuple[str, ...] = (
    "Apache",
    "BGL",
    "HDFS",
    "Hadoop",
    "Linux",
    "OpenStack",
    "Spark",
    "Zookeeper",
)


def loghub_dir() -> Path:
    """Where the LogHub 2k corrected files live (may not exist)."""
    env = os.environ.get("LOGHUB_DIR")
    if env:
        return Path(env)
    repo_root = Path(__file__).resolve().parents[2]
    return repo_root.parent / "shared" / "data" / "loghub"


def load_system(name: str, root: Path | None = None) -> tuple[list[str], list[str]]:
    """``(contents, event_ids)`` of ``NAME_2k.log_structured_corrected.csv``."""
    base = root or loghub_dir()
    path = base / name / f"{name}_2k.log_structured_corrected.csv"
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return [r["Content"] for r in rows], [r["EventId"] for r in rows]


def grouping_accuracy(predicted: Sequence[Hashable], truth: Sequence[Hashable]) -> float:
    """Share of lines whose predicted group equals their true group exactly."""
    if len(predicted) != len(truth):
        raise ValueError("predicted and truth differ in length")
    if not truth:
        return 1.0
    by_pred: dict[Hashable, set[int]] = defaultdict(set)
    by_true: dict[Hashable, set[int]] = defaultdict(set)
    for i, (p, t) in enumerate(zip(predicted, truth, strict=True)):
        by_pred[p].add(i)
        by_true[t].add(i)
    correct = 0
    for members in by_true.values():
        if by_pred[predicted[next(iter(members))]] == members:
            correct += len(members)
    return correct / len(truth)
