"""Where the machine's cores went during a timed window: workers, broker, this process, others.

A scale-out figure on shared cores says little without this: two workers can
only be twice one if two cores are free for them, and the broker, the bench's
own probing and other people's jobs take from the same two. The sampler reads
``/proc`` a few times a second; a window's share of each is interpolated
between samples, like the lines counters.
"""

from __future__ import annotations

import asyncio
import os
import time
from bisect import bisect_right
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

SAMPLE_INTERVAL_S: Final = 0.2
BUSY_FIELDS: Final = (0, 1, 2, 5, 6, 7)
"""user, nice, system, irq, softirq, steal in /proc/stat's cpu line (idle and iowait are not)."""
NICE_FIELD: Final = 1
"""Time in niced processes (other people's embedded models run at nice 10). With the kernel's
autogroup on, as on these machines, nice orders processes only within one session, and each
service is spawned in a session of its own: niced work still takes a full share of the cores."""


def machine_busy_s(stat_text: str, which: tuple[int, ...] = BUSY_FIELDS) -> float:
    """CPU seconds all cores have spent busy (or in `which` fields) since boot, from /proc/stat."""
    fields = stat_text.split("\n", 1)[0].split()[1:]
    return sum(int(fields[i]) for i in which if i < len(fields)) / os.sysconf("SC_CLK_TCK")


def children_cpu_s(parent: int) -> dict[int, float]:
    """User plus system CPU seconds of each live child of `parent`."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == parent:
            out[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
    return out


@dataclass(frozen=True)
class Sample:
    at: float
    """perf_counter time."""
    machine: float
    niced: float
    broker: float
    workers: float
    bench: float


@dataclass
class CpuSampler:
    """Samples the machine's busy time, the broker's, the other children's (workers) and ours."""

    broker_pid: int
    samples: list[Sample] = field(default_factory=list)

    def sample(self) -> None:
        kids = children_cpu_s(os.getpid())
        stat = Path("/proc/stat").read_text()
        broker = kids.pop(self.broker_pid, 0.0)
        self.samples.append(
            Sample(
                at=time.perf_counter(),
                machine=machine_busy_s(stat),
                niced=machine_busy_s(stat, (NICE_FIELD,)),
                broker=broker,
                workers=sum(kids.values()),
                bench=time.process_time(),
            )
        )

    async def run(self) -> None:
        """Sample until cancelled."""
        while True:
            self.sample()
            await asyncio.sleep(SAMPLE_INTERVAL_S)

    def cores(self, start: float, end: float) -> dict[str, float] | None:
        """Mean cores each kind used between `start` and `end`.

        ``other`` is the rest of the machine's load, and ``niced`` the part of all
        of it in niced processes (none of ours).
        """
        if end <= start or len(self.samples) < 2:
            return None
        times = [s.at for s in self.samples]
        if start < times[0] or end > times[-1]:
            return None
        used = {
            name: (_at(self.samples, times, end, name) - _at(self.samples, times, start, name))
            / (end - start)
            for name in ("machine", "niced", "broker", "workers", "bench")
        }
        used["other"] = used["machine"] - used["broker"] - used["workers"] - used["bench"]
        return {name: round(value, 2) for name, value in used.items()}


def _at(samples: list[Sample], times: list[float], at: float, name: str) -> float:
    """One counter at time `at`, linear between the samples around it."""
    i = min(max(bisect_right(times, at), 1), len(samples) - 1)
    before, after = samples[i - 1], samples[i]
    v0, v1 = getattr(before, name), getattr(after, name)
    if after.at <= before.at:
        return float(v1)
    return float(v0 + (v1 - v0) * (at - before.at) / (after.at - before.at))
