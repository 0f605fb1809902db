"""Streaming log template mining (Drain-style, bounded, restorable).

The public API: `TemplateMiner` (``mine_columns`` is the ingest hot path),
its output as consumers see it (`MinedBatch`, `MinedLine`), the numbers in
a batch's params folded into per-position stats (`fold_numbers`), and the
persisted template state (`TemplateState`, `TemplateRecord`). How shapes,
plans and numeric recipes are encoded stays inside the package.
"""

from .batch import MinedBatch, MinedLine
from .cli import mine_lines, write_mine_csv
from .masking import MARK, Masker
from .miner import TemplateMiner
from .model import Match, MinedShapes, MinerConfig, TemplateRecord, TemplateState
from .numeric import NUMERIC_PARAMS, PositionStats, RunningStats, fold_numbers

__all__ = [
    "MARK",
    "NUMERIC_PARAMS",
    "Masker",
    "Match",
    "MinedBatch",
    "MinedLine",
    "MinedShapes",
    "MinerConfig",
    "PositionStats",
    "RunningStats",
    "TemplateMiner",
    "TemplateRecord",
    "TemplateState",
    "fold_numbers",
    "mine_lines",
    "write_mine_csv",
]
