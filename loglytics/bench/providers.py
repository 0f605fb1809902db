"""Bench: throughput through `LLMPool` against the same requests sent straight to llama.cpp.

Why: every LLM call goes through the pool, so its semaphores, retries,
validation and accounting must not cost throughput. The pool is driven with
its slots full (4 and 8 callers); the direct baseline uses httpx at
concurrency 4 and 8; each side's better configuration counts. Runs are
interleaved round by round, in rotating order, so drift on a shared machine
hits both sides alike. Acceptance: ratio >= 0.9.

    python -m loglytics.bench.providers [--url http://127.0.0.1:PORT] [--requests 48]

The last line printed is one JSON object with pool_tokens_per_s,
direct_tokens_per_s, ratio, p50_ms, p99_ms.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from loglytics.embedded.processes import stop_pid
from loglytics.embedded.stack import start_llamacpp
from loglytics.providers import LLMPool, OpenAIProvider
from loglytics.settings import load_settings

MODEL = "smollm2-135m-instruct"
SERVICES = ("auth", "billing", "gateway", "search", "storage", "scheduler", "mailer", "cache")
PROBLEMS = ("timeout", "refused connection", "disk full", "OOM kill", "TLS error", "slow query")


def prompts(n: int) -> list[list[dict[str, str]]]:
    """Distinct chats so no cache (ours or llama.cpp's prompt cache) makes runs unequal."""
    out = []
    for i in range(n):
        line = (
            f"2025-03-{1 + i % 28:02d}T12:{i % 60:02d}:07Z ERROR {SERVICES[i % len(SERVICES)]}"
            f"[{1000 + i}]: {PROBLEMS[i % len(PROBLEMS)]} after {50 + 7 * i} ms (request {i:05d})"
        )
        out.append(
            [
                {"role": "system", "content": "You are a terse SRE assistant."},
                {"role": "user", "content": f"Explain this log line briefly:\n{line}"},
            ]
        )
    return out


@dataclass
class Run:
    """One measured batch: tokens generated, wall time, per-request latencies."""

    label: str
    tokens: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0


async def _bounded(concurrency: int, jobs: list[Any]) -> None:
    """Run coroutine factories with at most `concurrency` in flight (a worker pool)."""
    queue = list(reversed(jobs))

    async def worker() -> None:
        while queue:
            await queue.pop()()

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def run_pool(
    pool: LLMPool, chats: list[list[dict[str, str]]], max_tokens: int, concurrency: int
) -> Run:
    run = Run(f"pool-{concurrency}")

    def job(chat: list[dict[str, str]]) -> Any:
        async def call() -> None:
            result = await pool.complete(
                tenant="bench",
                tier="free",
                task="chat",
                messages=chat,
                max_tokens=max_tokens,
                temperature=0.0,
            )
            run.tokens += result.usage.completion_tokens
            run.latencies_ms.append(result.latency_ms)

        return call

    began = time.perf_counter()
    await _bounded(concurrency, [job(c) for c in chats])
    run.seconds = time.perf_counter() - began
    return run


async def run_direct(
    client: httpx.AsyncClient, chats: list[list[dict[str, str]]], max_tokens: int, concurrency: int
) -> Run:
    run = Run(f"direct-{concurrency}")

    def job(chat: list[dict[str, str]]) -> Any:
        async def call() -> None:
            t0 = time.perf_counter()
            response = await client.post(
                "/v1/chat/completions",
                json={
                    "model": MODEL,
                    "messages": chat,
                    "max_tokens": max_tokens,
                    "temperature": 0.0,
                    "stream": False,
                },
            )
            response.raise_for_status()
            run.tokens += int(response.json()["usage"]["completion_tokens"])
            run.latencies_ms.append((time.perf_counter() - t0) * 1000.0)

        return call

    began = time.perf_counter()
    await _bounded(concurrency, [job(c) for c in chats])
    run.seconds = time.perf_counter() - began
    return run


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _merge(label: str, runs: list[Run]) -> Run:
    merged = Run(label)
    for r in runs:
        merged.tokens += r.tokens
        merged.seconds += r.seconds
        merged.latencies_ms.extend(r.latencies_ms)
    return merged


async def bench(
    url: str, requests: int, max_tokens: int, rounds: int, slots: int
) -> dict[str, Any]:
    labels = ["pool-4", "pool-8", "direct-4", "direct-8"]  # side-concurrency
    chats = prompts(requests * len(labels))  # each configuration gets its own prompts
    per_round = max(1, requests // rounds)
    provider = OpenAIProvider(name="embedded", base_url=url, model=MODEL, max_parallel=slots)
    pool = LLMPool({"free": [provider]}, cache_size=0, timeout=120.0)
    direct = httpx.AsyncClient(base_url=url, timeout=120.0, limits=httpx.Limits(max_connections=16))
    runs: dict[str, list[Run]] = {label: [] for label in labels}
    try:
        # Warm up both paths (model pages, connections) outside the measurement.
        await run_pool(pool, chats[:slots], 8, slots)
        await run_direct(direct, chats[:slots], 8, slots)
        for rnd in range(rounds):
            # Rotate the order every round and reverse it every other one, so no
            # configuration always runs first, last, or after the same neighbour.
            shift = rnd % len(labels)
            order = labels[shift:] + labels[:shift]
            if rnd % 2:
                order.reverse()
            for label in order:
                base = labels.index(label) * requests + rnd * per_round
                sample = chats[base : base + per_round]
                side, conc = label.split("-")
                if side == "pool":
                    run = await run_pool(pool, sample, max_tokens, int(conc))
                else:
                    run = await run_direct(direct, sample, max_tokens, int(conc))
                runs[label].append(run)
    finally:
        await direct.aclose()
        await pool.stop()
    merged = {label: _merge(label, rs) for label, rs in runs.items()}
    # Each side at its better concurrency (both fill the server's slots).
    best_direct = max((merged["direct-4"], merged["direct-8"]), key=lambda r: r.tokens_per_s)
    pool_run = max((merged["pool-4"], merged["pool-8"]), key=lambda r: r.tokens_per_s)
    header = ("run", "requests", "tokens", "seconds", "tok/s", "p50 ms", "p99 ms")
    print(f"{header[0]:<10} " + " ".join(f"{h:>8}" for h in header[1:]))
    for r in merged.values():
        print(
            f"{r.label:<10} {len(r.latencies_ms):>8} {r.tokens:>7} {r.seconds:>8.2f} "
            f"{r.tokens_per_s:>8.1f} {_percentile(r.latencies_ms, 0.5):>8.0f} "
            f"{_percentile(r.latencies_ms, 0.99):>8.0f}"
        )
    ratio = pool_run.tokens_per_s / best_direct.tokens_per_s if best_direct.tokens_per_s else 0.0
    return {
        "pool_tokens_per_s": round(pool_run.tokens_per_s, 2),
        "direct_tokens_per_s": round(best_direct.tokens_per_s, 2),
        "pool_best": pool_run.label,
        "direct_best": best_direct.label,
        "ratio": round(ratio, 3),
        "p50_ms": round(_percentile(pool_run.latencies_ms, 0.5), 1),
        "p99_ms": round(_percentile(pool_run.latencies_ms, 0.99), 1),
        "requests": len(pool_run.latencies_ms),
        "max_tokens": max_tokens,
        "mean_completion_tokens": round(pool_run.tokens / max(1, len(pool_run.latencies_ms)), 1),
    }


def run(args: list[str] | None = None) -> dict[str, Any]:
    """Run the bench; starts (and stops) its own llama.cpp server unless `--url` is given."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default="", help="an already running llama.cpp server")
    parser.add_argument("--requests", type=int, default=48, help="requests per side")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=6, help="interleaved rounds")
    parser.add_argument("--slots", type=int, default=4, help="the server's parallel slots")
    opts = parser.parse_args(args)
    pid = None
    url = opts.url
    with tempfile.TemporaryDirectory(prefix="loglytics-bench-") as state:
        if not url:
            url, pid = start_llamacpp(load_settings(state_dir=state), tied=True)
        try:
            result = asyncio.run(
                bench(url, opts.requests, opts.max_tokens, opts.rounds, opts.slots)
            )
        finally:
            if pid is not None:
                stop_pid(pid)
    print(orjson.dumps(result).decode(), flush=True)
    return result


if __name__ == "__main__":
    run(sys.argv[1:])
