"""When every worker of a group was busy: per-worker counter readings and the rates they give.

`bench scale` compares one worker with two. The whole run of a group holds
things that do not scale with workers and happen once per run, not per line:
the group's first rebalance (a worker that joined first reads alone until the
other is assigned its partitions) and the tail (a worker whose partitions run
out first idles while the other finishes). So besides the whole span, each
worker's parsed-lines counter is read on its own, and the rate is also taken
over the window in which all of them were taking lines in: from the last
worker's first reading that moved to the first worker's reading at its final
count. With one worker both windows are the same.

A worker answers ``/metrics`` between ingest batches, so each reading lands on
a batch boundary, and a batch holds 100-200k lines. Inside the busy window
each worker's rate is therefore taken between its own first and last readings
in it (whole batches, nothing interpolated), and the group's rate is their sum:
every one of those intervals lies where all workers were busy. The whole span
starts and ends on readings too; other workers' counters are interpolated
linearly there (they are at 0 or at their final count at those moments).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from bisect import bisect_right
from dataclasses import dataclass

import aiohttp

from loglytics.bench.workers import PROBE_INTERVAL_S, AbsorbProbe, parsed_lines

Reading = tuple[float, float]
"""(perf_counter time, parsed lines) of one worker."""


class SeriesProbe(AbsorbProbe):
    """`AbsorbProbe` that polls each worker on its own and keeps every reading.

    It polls until cancelled (the pipeline cancels it once the digests account
    for every line), not until the total reaches the target: after a
    rebalance the next owner re-reads what was not committed yet, so the sum
    of the counters can reach the target before every line is taken in.
    """

    def __init__(self, ports: list[int], target: int) -> None:
        super().__init__(ports, target)
        self.series: list[list[Reading]] = [[] for _ in ports]

    async def run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=30)
        latest = [0.0] * len(self.urls)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            await asyncio.gather(*(self._poll(session, i, latest) for i in range(len(self.urls))))

    async def _poll(self, session: aiohttp.ClientSession, index: int, latest: list[float]) -> None:
        while True:
            with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError, OSError):
                async with session.get(self.urls[index]) as response:
                    value = parsed_lines(await response.text())
                now = time.perf_counter()
                self.series[index].append((now, value))
                latest[index] = value
                total = sum(latest)
                if total > 0 and self.first is None:
                    self.first = (now, total)
                if total >= self.target and self.last is None:
                    self.last = (now, total)
            await asyncio.sleep(PROBE_INTERVAL_S)


def value_at(series: list[Reading], at: float) -> float:
    """The counter at time `at`, linear between readings (0 before the first, last after)."""
    if not series or at < series[0][0]:
        return 0.0
    i = bisect_right([t for t, _ in series], at)
    if i >= len(series):
        return series[-1][1]
    (t0, v0), (t1, v1) = series[i - 1], series[i]
    return v0 + (v1 - v0) * (at - t0) / (t1 - t0) if t1 > t0 else v1


def first_moved(series: list[Reading]) -> float | None:
    """Time of the worker's first reading above zero."""
    return next((t for t, v in series if v > 0), None)


def reached_final(series: list[Reading]) -> float | None:
    """Time of the worker's first reading at its final count (None if it never moved)."""
    if not series or series[-1][1] <= 0:
        return None
    final = series[-1][1]
    return next(t for t, v in series if v >= final)


@dataclass(frozen=True)
class Span:
    """Lines the workers took in between two moments, and the rate that makes."""

    start: float
    end: float
    lines: float

    @property
    def seconds(self) -> float:
        return self.end - self.start

    @property
    def lines_per_s(self) -> float:
        return self.lines / self.seconds if self.seconds > 0 else 0.0


def lines_between(series: list[list[Reading]], start: float, end: float) -> Span | None:
    """Every worker's counter increase between `start` and `end`, summed; None if empty."""
    if end <= start:
        return None
    lines = sum(value_at(s, end) - value_at(s, start) for s in series)
    return Span(start, end, lines)


def whole_span(series: list[list[Reading]]) -> Span | None:
    """From the first worker's first moving reading to the last worker reaching its final count."""
    starts = [t for s in series if (t := first_moved(s)) is not None]
    ends = [t for s in series if (t := reached_final(s)) is not None]
    if not starts or not ends:
        return None
    return lines_between(series, min(starts), max(ends))


def own_rate(series: list[Reading], start: float, end: float) -> float | None:
    """One worker's rate between its own first and last readings inside [start, end].

    Both readings are batch boundaries of this worker, so the interval holds
    whole batches (fetch waits and compute) and nothing is interpolated.
    """
    inside = [(t, v) for t, v in series if start <= t <= end]
    if len(inside) < 2 or inside[-1][0] <= inside[0][0]:
        return None
    return (inside[-1][1] - inside[0][1]) / (inside[-1][0] - inside[0][0])


@dataclass(frozen=True)
class Busy:
    """The window in which every worker was taking lines in, and the group's rate in it."""

    start: float
    end: float
    rates: list[float]
    """Each worker's own rate inside the window (`own_rate`)."""

    @property
    def seconds(self) -> float:
        return self.end - self.start

    @property
    def lines_per_s(self) -> float:
        return sum(self.rates)


def busy_window(series: list[list[Reading]]) -> Busy | None:
    """From the last worker's first moving reading to the first worker at its final count.

    The group's rate is the sum of the workers' own rates inside it; None when
    the window is empty or a worker has fewer than two readings in it (input
    too small for the batch size: each reading is one batch boundary).
    """
    starts = [first_moved(s) for s in series]
    ends = [reached_final(s) for s in series]
    if not series or None in starts or None in ends:
        return None
    start = max(t for t in starts if t is not None)
    end = min(t for t in ends if t is not None)
    rates = [own_rate(s, start, end) for s in series]
    if end <= start or None in rates:
        return None
    return Busy(start, end, [r for r in rates if r is not None])
