"""`loglytics bench detection`: BGL alerts through the real pipeline, and what the LLM cost.

Replays `../shared/data/loghub/BGL/BGL_2k.log` (its `Label` column removed) as
one tenant's source through a real worker on the embedded stack, then scores
at line level: a line is flagged when a finding's evidence names its template.
The baseline flags every FATAL-level line. Tokens come from the `usage` topic
(what the pool actually charged). Ten consecutive replays go to ten sources of
the same tenant: same data, same patterns, so judged patterns cost nothing.
The naive design is priced as one prompt per window holding every raw line of
the window with the same system prompt and example.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from loglytics.bench import json_line
from loglytics.embedded import stack as embedded_stack
from loglytics.embedded.worker import WorkerProcess
from loglytics.ingest.pipeline import Decoded, SourcePipeline
from loglytics.kafka_admin import consumer_lag, read_topic
from loglytics.kafka_clients import KafkaConnection
from loglytics.prompts.detection import DETECTION
from loglytics.providers.tokens import estimate_messages, estimate_tokens
from loglytics.schemas import LogBatch
from loglytics.settings import load_settings

TENANT = "bench"
BATCH = 500


def _loghub(path: Path | None) -> Path:
    if path is not None:
        return path
    env = os.environ.get("LOGHUB_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2].parent / "shared" / "data" / "loghub"


def load_bgl(loghub: Path) -> tuple[list[str], list[bool], list[str]]:
    """Raw lines without the label column, whether each is an alert, and each line's level."""
    raw = (loghub / "BGL" / "BGL_2k.log").read_text(encoding="utf-8").splitlines()
    with open(loghub / "BGL" / "BGL_2k.log_structured_corrected.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    lines, alerts, levels = [], [], []
    for line, row in zip(raw, rows, strict=True):
        label, _, rest = line.partition(" ")
        lines.append(rest)
        alerts.append(label != "-")
        levels.append(row["Level"])
    return lines, alerts, levels


def _prf(flags: list[bool], truth: list[bool]) -> dict[str, float]:
    tp = sum(f and t for f, t in zip(flags, truth, strict=True))
    fp = sum(f and not t for f, t in zip(flags, truth, strict=True))
    fn = sum(t and not f for f, t in zip(flags, truth, strict=True))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4)}


async def _produce(bootstrap: str, source: str, lines: list[str]) -> None:
    from loglytics.kafka_admin import ensure_topics

    kafka = KafkaConnection(bootstrap)  # the bench's own embedded broker: plaintext
    await ensure_topics(kafka, 4)
    producer = kafka.producer(max_request_size=8 << 20)
    await producer.start()
    try:
        for i in range(0, len(lines), BATCH):
            batch = LogBatch(tenant=TENANT, source=source, lines=lines[i : i + BATCH])
            await producer.send_and_wait(
                "logs.raw", value=batch.to_bytes(), key=f"{TENANT}/{source}".encode()
            )
    finally:
        await producer.stop()


async def _read(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    return [orjson.loads(v) for v in await read_topic(KafkaConnection(bootstrap), topic)]


def _llm_busy(web_port: int) -> float:
    """LLM calls in flight or queued in the worker's pool, from its /metrics."""
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(("loglytics_llm_in_flight", "loglytics_llm_queue_depth"))
    )


def _wait_settled(
    bootstrap: str, worker: WorkerProcess, source: str, total_lines: int, timeout: float
) -> None:
    """Until every line is in a closed window, the worker has committed everything it read,
    and no LLM judgement (they run in the background) is still in flight."""
    group = worker.app_id
    deadline = time.monotonic() + timeout
    calm = 0
    while time.monotonic() < deadline:
        windows = asyncio.run(_read(bootstrap, "logs.windows"))
        covered = sum(
            w["line_count"] for w in windows if w["tenant"] == TENANT and w["source"] == source
        )
        if covered >= total_lines:
            topics = ("logs.raw", "logs.windows", "findings", "usage")
            partitions = load_settings().topic_partitions
            lag = asyncio.run(consumer_lag(KafkaConnection(bootstrap), group, topics, partitions))
            calm = calm + 1 if lag == 0 and _llm_busy(worker.web_port) == 0 else 0
            if calm >= 3:
                return
        time.sleep(1.0)
    raise TimeoutError(f"replay of {source} did not settle within {timeout:.0f}s")


def _line_templates(lines: list[str]) -> tuple[list[str], SourcePipeline]:
    """The pipeline's template id of every line, from an identical replica of its miner."""
    replica = SourcePipeline(TENANT, "replica")
    ids: list[str] = []
    for i in range(0, len(lines), BATCH):
        batch = replica.process_batch(Decoded(TENANT, "replica", None, lines[i : i + BATCH]), 0.0)
        ids.extend(batch.mined.template_ids)
    return [replica.miner.resolve(t) for t in ids], replica


def _tokens(usage: list[dict[str, Any]]) -> tuple[int, int]:
    """(tokens, LLM calls) charged to the bench's tenant."""
    ours = [u for u in usage if u["tenant"] == TENANT]
    return sum(int(u["prompt_tokens"]) + int(u["completion_tokens"]) for u in ours), len(ours)


@dataclass(frozen=True)
class Replays:
    """What the replays left on the topics, and what replay 1 took."""

    seconds_1x: float
    findings_1x: list[dict[str, Any]]  # the tenant's findings after replay 1
    incidents_1x: list[dict[str, Any]]  # the tenant's incident events after replay 1
    findings_all: list[dict[str, Any]]  # ... after every replay
    windows_1x: list[dict[str, Any]]  # replay 1's window digests
    tokens_1x: int
    prompts_1x: int
    tokens_all: int
    prompts_all: int


def _options(args: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="loglytics bench detection", description=__doc__)
    parser.add_argument("--loghub-dir", type=Path, default=None)
    parser.add_argument("--replays", type=int, default=10)
    parser.add_argument("--window-seconds", type=float, default=60.0)
    parser.add_argument("--timeout", type=float, default=600.0, help="per replay")
    return parser.parse_args(args or [])


def _ours(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if r["tenant"] == TENANT]


def replay(opts: argparse.Namespace, lines: list[str]) -> Replays:
    """Replay the lines `opts.replays` times, one source each, through a real worker."""
    workdir = Path(tempfile.mkdtemp(prefix="loglytics-bench-detection-"))
    settings = embedded_stack.private_settings(workdir)
    state = embedded_stack.up(settings, tied=True)
    worker = WorkerProcess(
        state,
        workdir,
        window_seconds=opts.window_seconds,
        allowed_lateness_seconds=0,
        window_idle_close_seconds=2,
    )
    kafka = state.kafka
    try:
        worker.start()
        started = time.monotonic()
        asyncio.run(_produce(kafka, "bgl-r1", lines))
        _wait_settled(kafka, worker, "bgl-r1", len(lines), opts.timeout)
        seconds_1x = time.monotonic() - started
        findings_1x = _ours(asyncio.run(_read(kafka, "findings")))
        incidents_1x = _ours(asyncio.run(_read(kafka, "incidents")))
        tokens_1x, prompts_1x = _tokens(asyncio.run(_read(kafka, "usage")))
        windows_1x = [
            w for w in _ours(asyncio.run(_read(kafka, "logs.windows"))) if w["source"] == "bgl-r1"
        ]
        for n in range(2, opts.replays + 1):
            asyncio.run(_produce(kafka, f"bgl-r{n}", lines))
            _wait_settled(kafka, worker, f"bgl-r{n}", len(lines), opts.timeout)
        tokens_all, prompts_all = _tokens(asyncio.run(_read(kafka, "usage")))
        findings_all = _ours(asyncio.run(_read(kafka, "findings")))
    finally:
        worker.stop()
        embedded_stack.down(settings)
    return Replays(
        seconds_1x=seconds_1x,
        findings_1x=findings_1x,
        incidents_1x=incidents_1x,
        findings_all=findings_all,
        windows_1x=windows_1x,
        tokens_1x=tokens_1x,
        prompts_1x=prompts_1x,
        tokens_all=tokens_all,
        prompts_all=prompts_all,
    )


def _naive_tokens(windows: list[dict[str, Any]], lines: list[str]) -> tuple[int, int]:
    """(tokens, windows) of the naive design: one prompt per window holding every line of it,
    with the same system prompt."""
    overhead = estimate_messages(DETECTION.messages(""))
    window_lines: dict[float, int] = defaultdict(int)
    for w in windows:
        window_lines[w["window_start"]] += w["line_count"]
    naive = overhead * len(window_lines) + sum(estimate_tokens(line) + 1 for line in lines)
    return naive, len(window_lines)


def _print_table(
    opts: argparse.Namespace,
    result: dict[str, Any],
    seconds_1x: float,
    alert_lines: int,
    by_severity: dict[str, int],
    per_replay: dict[str, int],
) -> None:
    print(
        f"BGL 2k lines, {alert_lines} alert lines; windows of {opts.window_seconds:.0f}s: "
        f"{result['windows_1x']}; replay 1 took {seconds_1x:.1f}s"
    )
    print(f"{'':22s}{'precision':>10s}{'recall':>10s}{'f1':>10s}")
    for label, prefix in (("loglytics findings", ""), ("FATAL baseline", "baseline_")):
        print(
            f"{label:22s}{result[prefix + 'precision']:>10.3f}{result[prefix + 'recall']:>10.3f}"
            f"{result[prefix + 'f1']:>10.3f}"
        )
    print(
        f"findings (replay 1): {result['findings_1x']} by severity {dict(by_severity)}, "
        f"in {result['incidents_1x']} incidents; "
        f"per replay: {dict(sorted(per_replay.items()))}"
    )
    print(
        f"tokens: 1 replay {result['tokens_1x']} in {result['prompts_1x']} prompts, "
        f"{opts.replays} replays {result['tokens_10x']} in {result['prompts_10x']}, "
        f"naive 1 replay {result['tokens_naive_1x']}"
    )


def run(args: list[str] | None = None) -> dict[str, Any]:
    opts = _options(args)
    lines, alerts, levels = load_bgl(_loghub(opts.loghub_dir))
    replays = replay(opts, lines)

    line_tids, replica = _line_templates(lines)
    named: set[str] = set()
    by_severity: dict[str, int] = defaultdict(int)
    first = {f["finding_id"]: f for f in replays.findings_1x if f["source"] == "bgl-r1"}
    for f in first.values():
        by_severity[f["severity"]] += 1
        named.update(replica.miner.resolve(t) for t in f["evidence"]["template_ids"])
    ours = _prf([t in named for t in line_tids], alerts)
    baseline = _prf([lv == "FATAL" for lv in levels], alerts)
    naive, windows = _naive_tokens(replays.windows_1x, lines)
    per_replay: dict[str, int] = defaultdict(int)
    for f in {f["finding_id"]: f for f in replays.findings_all}.values():
        per_replay[f["source"]] += 1

    result: dict[str, Any] = {
        "recall": ours["recall"],
        "precision": ours["precision"],
        "f1": ours["f1"],
        "baseline_precision": baseline["precision"],
        "baseline_recall": baseline["recall"],
        "baseline_f1": baseline["f1"],
        "tokens_1x": replays.tokens_1x,
        "tokens_10x": replays.tokens_all,
        "tokens_naive_1x": naive,
        # How many prompts carried them: the judge asks about the new patterns of the
        # windows that arrive together, a few per prompt, so the count depends on timing.
        "prompts_1x": replays.prompts_1x,
        "prompts_10x": replays.prompts_all,
        "findings_1x": len(first),
        # The incidents replay 1's findings were grouped into (what an alerting consumer gets).
        "incidents_1x": len(
            {i["incident_id"] for i in replays.incidents_1x if "bgl-r1" in i["sources"]}
        ),
        "windows_1x": windows,
        "replays": opts.replays,
    }
    _print_table(opts, result, replays.seconds_1x, sum(alerts), by_severity, per_replay)
    print(json_line(result))
    return result


if __name__ == "__main__":
    run()
