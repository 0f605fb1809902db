"""Batch interface behind ``loglytics mine``: lines in, template per line out."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import TextIO

from .miner import TemplateMiner
from .model import MinerConfig

__all__ = ["mine_lines", "write_mine_csv"]

_BATCH = 4096


def mine_lines(lines: Iterable[str], config: MinerConfig | None = None) -> list[tuple[str, str]]:
    """``(template_id, template)`` for every line, judged after all lines.

    Templates keep evolving while the stream is read, so the answer for an
    early line is taken at the end: merged ids are resolved to the survivor
    and the survivor's final text is reported.  A template evicted by the
    size cap keeps the id and text it had when its line was mined.
    """
    miner = TemplateMiner(config)
    matches = []
    batch: list[str] = []
    for line in lines:
        batch.append(line)
        if len(batch) >= _BATCH:
            matches.extend(miner.add_many(batch))
            batch = []
    if batch:
        matches.extend(miner.add_many(batch))
    final: dict[str, tuple[str, str]] = {}
    out: list[tuple[str, str]] = []
    for match in matches:
        result = final.get(match.template_id)
        if result is None:
            tid = miner.resolve(match.template_id)
            state = miner.template(tid)
            result = (tid, match.template if state is None else state.template)
            final[match.template_id] = result
        out.append(result)
    return out


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
