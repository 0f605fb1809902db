"""Smoke test for the mining benchmark's result contract."""

from __future__ import annotations

import json

import pytest

from loglytics.bench.mining import run
from loglytics.mining.evaluation import loghub_dir


@pytest.mark.skipif(
    not (loghub_dir() / "Apache").is_dir(),
    reason=f"LogHub data not found at {loghub_dir()} (set LOGHUB_DIR)",
)
def test_bench_reports_ga_and_throughput(capsys: pytest.CaptureFixture[str]) -> None:
    result = run(["--repeat", "1", "--systems", "Apache"])
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(last) == json.loads(json.dumps(result))
    for key in ("mean_ga", "drain3_mean_ga", "lines_per_s", "drain3_lines_per_s", "speedup"):
        assert result[key] > 0
    assert set(result["ga"]) == set(result["drain3_ga"]) == {"Apache"}
