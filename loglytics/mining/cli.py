"""Batch interface behind ``loglytics mine``: lines in, template per line out."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from typing import TextIO

from .miner import TemplateMiner
from .model import MinerConfig

__all__ = ["BATCH_LINES", "batched", "mine_lines", "write_mine_csv"]

BATCH_LINES = 4096


def mine_lines(lines: Iterable[str], config: MinerConfig | None = None) -> list[tuple[str, str]]:
    """``(template_id, template)`` for every line, judged after all lines.

    Lines are mined in batches with :meth:`TemplateMiner.mine_columns`, the
    path ingest takes. Templates keep evolving while the stream is read, so
    the answer for an early line is taken at the end: merged ids are resolved
    to the survivor and the survivor's final text is reported.  A template
    evicted by the size cap keeps the id and text it had in its batch.
    """
    miner = TemplateMiner(config)
    ids: list[str] = []
    texts: dict[str, str] = {}
    for batch in batched(lines, BATCH_LINES):
        mined = miner.mine_columns(batch)
        ids.extend(mined.template_ids)
        texts.update(mined.templates)
    final: dict[str, tuple[str, str]] = {}
    for tid in dict.fromkeys(ids):
        survivor = miner.resolve(tid)
        state = miner.template(survivor)
        final[tid] = (survivor, texts[tid] if state is None else state.template)
    return list(map(final.__getitem__, ids))


def batched(lines: Iterable[str], size: int) -> Iterator[list[str]]:
    """Consecutive lists of ``size`` lines (the last may be shorter)."""
    batch: list[str] = []
    for line in lines:
        batch.append(line)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def write_mine_csv(lines: Iterable[str], out: TextIO) -> None:
    """Write ``line,template_id,template`` rows in input order.

    Trailing newlines are stripped from each input line so a file object can
    be passed directly.
    """
    texts = [line.rstrip("\r\n") for line in lines]
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(("line", "template_id", "template"))
    for text, (tid, template) in zip(texts, mine_lines(texts), strict=True):
        writer.writerow((text, tid, template))
