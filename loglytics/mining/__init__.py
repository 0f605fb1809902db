"""Streaming log template mining (Drain-style, bounded, restorable)."""

from .cli import mine_lines, write_mine_csv
from .masking import MARK, Masker
from .miner import TemplateMiner
from .model import Match, MinerConfig, TemplateState

__all__ = [
    "MARK",
    "Masker",
    "Match",
    "MinerConfig",
    "TemplateMiner",
    "TemplateState",
    "mine_lines",
    "write_mine_csv",
]
