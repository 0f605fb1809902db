"""Benchmarks behind `loglytics bench NAME`: each compares against a baseline in the same run
and ends with one JSON line."""

from __future__ import annotations

import importlib
from typing import Any

import orjson

BENCHMARKS = {
    "mining": "loglytics.bench.mining",
    "ingest": "loglytics.bench.ingest",
    "providers": "loglytics.bench.providers",
    "detection": "loglytics.bench.detection",
    "grounding": "loglytics.bench.grounding",
    "scale": "loglytics.bench.scale",
}


def run_benchmark(name: str, args: list[str]) -> int:
    if name not in BENCHMARKS:
        print(f"unknown benchmark {name!r}; choose from {', '.join(BENCHMARKS)}")
        return 2
    module = importlib.import_module(BENCHMARKS[name])
    result: dict[str, Any] = module.run(args)
    del result  # each benchmark prints its own table and final JSON line
    return 0


def json_line(result: dict[str, Any]) -> str:
    return orjson.dumps(result).decode()
