"""Access to the shared Loghub-2k samples, for the benchmark and the tests.

The data is never copied into the repository: it is read from
``$LOGHUB_DIR`` or ``../shared/data/loghub`` beside the repository root.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

SYSTEMS: Final = ("Apache", "BGL", "HDFS", "Hadoop", "Linux", "OpenStack", "Spark", "Zookeeper")


@dataclass(frozen=True, slots=True)
class Sample:
    """Raw lines of one system with the ground-truth rows, aligned by index."""

    system: str
    lines: list[str]
    truth: list[dict[str, str]]


def loghub_dir() -> Path | None:
    """The Loghub directory, or ``None`` when it is not available here."""
    env = os.environ.get("LOGHUB_DIR")
    repo_root = Path(__file__).resolve().parents[2]
    candidates = [Path(env)] if env else []
    candidates += [
        repo_root.parent / "shared" / "data" / "loghub",
        Path.cwd().parent / "shared" / "data" / "loghub",
    ]
    for path in candidates:
        if (path / "HDFS").is_dir():
            return path
    return None


def load(system: str, root: Path) -> Sample:
    """Read ``NAME_2k.log`` and its corrected structured CSV."""
    folder = root / system
    with open(folder / f"{system}_2k.log", encoding="utf-8", errors="replace", newline="") as fh:
        lines = fh.read().splitlines()
    with open(
        folder / f"{system}_2k.log_structured_corrected.csv", encoding="utf-8", newline=""
    ) as fh:
        truth = list(csv.DictReader(fh))
    return Sample(system, lines[: len(truth)], truth)
