"""Integration: a real worker on the embedded broker turns raw logs into windows."""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
from kafka_io import produce, read_all, wait_for
from worker_proc import WorkerProcess

from loglytics.embedded.stack import StackState
from loglytics.schemas import LogBatch
from loglytics.synthetic import line_ts, mixed_lines

# Syslog lines carry no year, so the synthetic stream must lie in the current year.
T0 = float(int(time.time() - 3600) // 60 * 60)


def _dedup_windows(
    records: list[dict[str, Any]], tenant: str
) -> dict[tuple[str, str, float], dict[str, Any]]:
    """A tenant's windows keyed by (tenant, source, start); a re-emitted window must be identical.

    Every test uses its own tenant: all tests share the session's broker and topics.
    """
    out: dict[tuple[str, str, float], dict[str, Any]] = {}
    for rec in records:
        if rec["tenant"] != tenant:
            continue
        key = (rec["tenant"], rec["source"], rec["window_start"])
        if key in out:
            assert out[key]["line_count"] == rec["line_count"], (
                f"window {key} emitted twice with different counts"
            )
        out[key] = rec
    return out


def test_records_reach_windows_and_bad_input_is_dead_lettered(
    stack: StackState, tmp_path: Path
) -> None:
    worker = WorkerProcess(stack, tmp_path, window_seconds=10, window_idle_close_seconds=1.5)
    worker.start()
    try:
        lines = [
            f"2023-11-14 22:13:{i % 60:02d},000 INFO [main] com.x.Api: "
            f"request {i} served in {i % 7} ms"
            for i in range(50)
        ]
        good = LogBatch(tenant="acme", source="api", lines=lines).to_bytes()
        text = (
            b"Nov 14 22:13:20 web01 sshd[12]: Failed password for root from 10.0.0.1\n"
            b"Nov 14 22:13:21 web01 sshd[12]: Accepted password for bob"
        )
        bad: list[tuple[bytes | None, bytes, list[tuple[str, bytes]] | None]] = [
            (b"acme/api", b"{not json", None),
            (b"acme/api", orjson.dumps({"tenant": 5, "source": "x", "lines": ["a"]}), None),
            (None, b"plain text with no tenant anywhere", None),
            (b"acme/api", b"\xff\xfe\x00garbage", [("tenant", b"../../etc")]),
            (b"acme/api", orjson.dumps([1, 2, 3]), None),
        ]
        asyncio.run(
            produce(
                stack.kafka,
                "logs.raw",
                [
                    *bad,
                    (b"acme/api", good, None),
                    (None, text, [("tenant", b"acme"), ("source", b"auth")]),
                ],
            )
        )
        records = wait_for(
            stack.kafka,
            "logs.windows",
            lambda recs: sum(r["line_count"] for r in recs if r["tenant"] == "acme") >= 52,
            60,
            "windows covering 52 lines",
        )
        windows = _dedup_windows(records, "acme")
        by_source: Counter[tuple[str, str]] = Counter()
        for (tenant, source, _), w in windows.items():
            by_source[(tenant, source)] += w["line_count"]
        assert by_source == {("acme", "api"): 50, ("acme", "auth"): 2}
        api = [w for (t, s, _), w in windows.items() if s == "api"]
        assert all(w["window_end"] - w["window_start"] == 10 for w in api)
        templates = {t["template"] for w in api for t in w["templates"]}
        assert any("<*>" in t for t in templates), templates
        letters = asyncio.run(read_all(stack.kafka, "deadletter"))
        mine = [
            d
            for d in letters
            if d["stage"] == "ingest" and d["reason"] and "internal" not in d["reason"]
        ]
        assert len(mine) >= len(bad)
        reasons = " | ".join(d["reason"] for d in mine)
        assert "invalid JSON" in reasons and "tenant" in reasons
        assert worker.proc is not None and worker.proc.poll() is None, "worker died on bad input"
        assert not worker.crashes(), "\n".join(worker.crashes()[:5])
    finally:
        worker.stop()


def _restart_messages(
    window: float, per_message: int
) -> tuple[Counter[tuple[str, float]], list[tuple[bytes, bytes, None]]]:
    """One source per format, each line's event time known: the expected window counts,
    and the messages (`per_message` lines each) that carry the lines."""
    pairs = list(mixed_lines(12_000, T0, rate_per_s=10.0, seed=3))
    expected: Counter[tuple[str, float]] = Counter()
    batches: dict[str, list[str]] = {}
    messages = []

    def message(source: str, lines: list[str]) -> tuple[bytes, bytes, None]:
        batch = LogBatch(tenant="rst", source=source, lines=lines)
        return (f"rst/{source}".encode(), batch.to_bytes(), None)

    for i, (source, line) in enumerate(pairs):
        ts = line_ts(T0, i, 10.0)
        expected[(source, math.floor(ts / window) * window)] += 1
        batches.setdefault(source, []).append(line)
        if len(batches[source]) == per_message:
            messages.append(message(source, batches.pop(source)))
    for source, rest in batches.items():
        messages.append(message(source, rest))
    return expected, messages


def test_restart_counts_every_line_once_and_keeps_template_ids(
    stack: StackState, tmp_path: Path
) -> None:
    window = 30.0
    expected, messages = _restart_messages(window, per_message=100)

    worker = WorkerProcess(
        stack,
        tmp_path,
        window_seconds=window,
        allowed_lateness_seconds=0,
        window_idle_close_seconds=8,
    )
    asyncio.run(produce(stack.kafka, "logs.raw", messages[:60]))
    worker.start()
    try:
        first = wait_for(
            stack.kafka,
            "logs.windows",
            lambda recs: sum(r["tenant"] == "rst" for r in recs) >= 5,
            60,
            "first windows",
        )
        asyncio.run(produce(stack.kafka, "logs.raw", messages[60:]))
        worker.kill()  # mid-stream: no clean shutdown, no final offset commit
        worker.start()
        total = sum(expected.values())
        records = wait_for(
            stack.kafka,
            "logs.windows",
            lambda recs: (
                sum(w["line_count"] for w in _dedup_windows(recs, "rst").values()) >= total
            ),
            120,
            f"windows covering {total} lines",
        )
    finally:
        worker.stop()
    windows = _dedup_windows(records, "rst")
    got = Counter({(s, start): w["line_count"] for (t, s, start), w in windows.items()})
    assert got == expected
    first_keys = {(w["source"], w["window_start"]) for w in first if w["tenant"] == "rst"}
    ids_before = {
        (w["source"], t["template"]): t["template_id"]
        for w in first
        if w["tenant"] == "rst"
        for t in w["templates"]
    }
    ids_after = {
        (s, t["template"]): t["template_id"]
        for (_, s, start), w in windows.items()
        if (s, start) not in first_keys
        for t in w["templates"]
    }
    shared = set(ids_before) & set(ids_after)
    assert shared, "no template seen on both sides of the restart"
    assert {t: ids_before[t] for t in shared} == {t: ids_after[t] for t in shared}
