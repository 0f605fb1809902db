"""`loglytics bench scale`: its window arithmetic, its even keys, and one tiny run's JSON line."""

from __future__ import annotations

import importlib.util
import json
import os
from collections import Counter

import pytest

from loglytics.bench.busy import busy_window, own_rate, value_at, whole_span
from loglytics.bench.cpu import machine_busy_s
from loglytics.bench.scale import EvenKeys, run, worker_order
from loglytics.partitioning import partition_for, source_key

# Worker 0 reads alone from t=1 (the other joins late), both read from t=2 to t=5,
# worker 0 runs out at t=5, worker 1 finishes alone at t=7.
WORKER_0 = [(0.5, 0.0), (1.0, 100.0), (2.0, 200.0), (3.0, 300.0), (5.0, 500.0), (6.0, 500.0)]
WORKER_1 = [(0.5, 0.0), (1.5, 0.0), (2.0, 50.0), (4.0, 250.0), (6.0, 450.0), (7.0, 550.0)]


def test_the_busy_window_runs_from_the_last_start_to_the_first_finish() -> None:
    busy = busy_window([WORKER_0, WORKER_1])
    assert busy is not None
    assert (busy.start, busy.end) == (2.0, 5.0)
    # each worker's own readings inside [2, 5]: 200->500 over 3 s, 50->250 over 2 s
    assert busy.rates == [100.0, 100.0]
    assert busy.lines_per_s == 200.0


def test_the_whole_span_holds_the_lone_start_and_the_tail() -> None:
    whole = whole_span([WORKER_0, WORKER_1])
    assert whole is not None
    assert (whole.start, whole.end) == (1.0, 7.0)
    assert whole.lines == 950.0  # 1050 in all, less the 100 already in the first reading
    assert whole.lines_per_s == pytest.approx(950 / 6)


def test_no_busy_window_when_the_workers_never_overlap_or_read_once() -> None:
    early = [(0.0, 0.0), (1.0, 100.0), (2.0, 200.0)]
    late = [(0.0, 0.0), (3.0, 100.0), (4.0, 200.0)]
    assert busy_window([early, late]) is None
    one_batch = [(0.0, 0.0), (1.0, 500.0)]
    assert busy_window([one_batch]) is None
    assert busy_window([]) is None


def test_counter_interpolation_and_own_rate() -> None:
    assert value_at(WORKER_0, 0.0) == 0.0
    assert value_at(WORKER_0, 4.0) == 400.0
    assert value_at(WORKER_0, 9.0) == 500.0
    assert own_rate(WORKER_1, 1.9, 6.5) == 100.0
    assert own_rate(WORKER_1, 2.1, 3.9) is None


def test_keys_spread_evenly_over_the_partitions() -> None:
    keys = EvenKeys(partitions=4)
    sources = [f"svc-{n}" for n in range(5)]
    names = {(t, s): keys.tenant(f"scale{t}", s) for t in range(4) for s in sources}
    assert keys.tenant("scale0", "svc-0") == names[(0, "svc-0")]  # stable per source
    landed = Counter(partition_for(source_key(n, s), 4) for (_, s), n in names.items())
    assert sorted(landed.values()) == [5, 5, 5, 5]


def test_the_order_alternates_and_cpu_text_parses() -> None:
    assert worker_order(1) == [1, 2]
    assert worker_order(2) == [1, 2, 2, 1]
    ticks = "cpu  100 30 50 1000 7 0 10 0 0 0\ncpu0 1 2 3\n"
    tick = os.sysconf("SC_CLK_TCK")
    assert machine_busy_s(ticks) == pytest.approx(190 / tick)  # idle and iowait left out
    assert machine_busy_s(ticks, (1,)) == pytest.approx(30 / tick)


def test_a_tiny_run_ends_with_its_json_line(capsys: pytest.CaptureFixture[str]) -> None:
    """Too few lines for a busy window (a batch is 100k+ lines): the whole-span figures fill."""
    has_ledger = importlib.util.find_spec("loglytics.ledger") is not None
    calls = ["--calls", "10", "--warmup", "3"] if has_ledger else ["--calls", "0"]
    result = run(["--lines", "20000", "--rounds", "1", *calls])
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(last) == json.loads(json.dumps(result))
    assert result["bench"] == "scale"
    assert result["lines"] == sum(result["lines_per_partition"]) == 20000
    assert [r["workers"] for r in result["runs"]] == [1, 2]
    for one_run in result["runs"]:
        assert sum(one_run["lines_per_worker"]) >= 20000
        assert one_run["end_to_end_lines_per_s"] > 0
    assert len(result["runs"][1]["lines_per_worker"]) == 2
    assert result["speedup_end_to_end"] > 0
    for key in ("lines_per_s_1", "lines_per_s_2", "speedup", "speedup_whole"):
        assert key in result
    if has_ledger:
        assert result["admission_calls"] == 10
        assert 0 < result["admission_p50_ms"] <= result["admission_p99_ms"]
