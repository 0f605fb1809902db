"""Helpers for the scale-out tests (no tests here): a slow fake LLM, workers in one consumer
group, requests on chosen partitions, and the workers' ClickHouse directories read as one.

Why a fake LLM: a request must stay in flight long enough for a worker to die under it,
and the embedded model on two shared cores is slow and uneven. Chat messages holding
`SLOW` are answered after `slow` seconds; everything else (detection's prompts) at once.
Every answer reports token usage, so calls are charged as real ones are.

Why the directories are read as one: every worker has its own chdb directory (one
process per directory), where a deployment shares one ClickHouse. A row a worker wrote
before it died and wrote again by the partition's next owner is one row in a shared
ReplacingMergeTree table, so the union is deduplicated by the table's sorting key,
keeping the latest `ingested_at` as the engine would.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web
from provider_fakes import FakeOpenAI, Step
from test_requests_support import uid
from worker_proc import WorkerProcess

from loglytics.clients import RequestClient
from loglytics.embedded.stack import StackState
from loglytics.kafka_admin import consumer_lag
from loglytics.kafka_clients import KafkaConnection
from loglytics.schemas import LLMRequest, LLMResponse
from loglytics.storage.client import open_client

SLOW = "SLOW"
SYNCED = "Successfully synced group"  # aiokafka, once a member has its assignment
PARTITIONS = 4


class SlowChatLLM(FakeOpenAI):
    """An OpenAI-compatible fake: messages holding `SLOW` wait `slow` seconds first."""

    def __init__(self, slow: float) -> None:
        super().__init__(
            Step(content="All good.", usage={"prompt_tokens": 40, "completion_tokens": 10})
        )
        self.slow = slow
        self.slow_started = 0

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()  # aiohttp keeps the body: the parent reads it again
        if SLOW in orjson.dumps(body.get("messages", [])).decode():
            self.slow_started += 1
            await asyncio.sleep(self.slow)
        return await super()._chat(request)


class LLMThread:
    """`SlowChatLLM` served from a thread of its own, so synchronous tests can run it."""

    def __init__(self, slow: float) -> None:
        self.fake = SlowChatLLM(slow)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def start(self) -> str:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.fake.__aenter__(), self._loop).result(10)
        return self.fake.url

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.fake.__aexit__(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


@dataclass
class Cluster:
    """Workers sharing one app id (one consumer group, one set of changelogs)."""

    stack: StackState
    root: Path
    env: dict[str, str | float]
    app_id: str = field(default_factory=lambda: f"t{uid()}")
    workers: list[WorkerProcess] = field(default_factory=list)

    def add(self) -> WorkerProcess:
        """A new member (not started), with a ClickHouse directory of its own."""
        worker = WorkerProcess(
            self.stack, self.root / f"w{len(self.workers)}", self.app_id, **self.env
        )
        self.workers.append(worker)
        return worker

    def start(self, workers: Iterable[WorkerProcess] | None = None) -> None:
        """Start the given workers (default: every one not running) side by side.

        Spawned from this thread, which outlives them: a worker dies with the thread
        that spawned it (see `WorkerProcess.spawn`)."""
        todo = [w for w in (self.workers if workers is None else workers) if not running(w)]
        markers = [w.spawn() for w in todo]
        for worker, marker in zip(todo, markers, strict=True):
            worker.wait_ready(marker, timeout=120)

    def stop(self) -> None:
        """Stop every worker, one at a time, each once the others re-formed the group.

        Not side by side: the embedded broker (Tansu 0.6) keeps a group's recorded
        leader when that leader leaves while the group is re-forming, so two members
        leaving at once can leave a leader no later member replaces. Every member that
        joins afterwards is a follower whose SyncGroup is refused, and the group never
        forms again (each worker logs "(Re-)joining group" every few seconds, forever).
        """
        left = [w for w in self.workers if running(w)]
        try:
            while left:
                leaving = left.pop()
                marks = [w.log_mark() for w in left]
                leaving.stop()
                for worker, mark in zip(left, marks, strict=True):
                    worker.wait_logged(SYNCED, mark, 60, "back in the group")
        finally:
            for worker in self.workers:
                worker.stop()  # whatever a failed wait left running

    @property
    def kafka(self) -> KafkaConnection:
        return KafkaConnection(self.stack.kafka)

    def wait_settled(self, topics: Sequence[str], timeout: float) -> int:
        """Until the group has committed everything on `topics`; the lag left."""
        deadline = time.monotonic() + timeout
        while True:
            lag = asyncio.run(consumer_lag(self.kafka, self.app_id, tuple(topics), PARTITIONS))
            if not lag or time.monotonic() > deadline:
                return lag
            time.sleep(0.5)

    def rows(self, sql: str, tenant: str) -> list[tuple[Any, ...]]:
        """`sql` (with a `{t:String}` tenant parameter) on every worker's directory, in turn.

        Only for stopped workers: chdb locks a directory for one process."""
        out: list[tuple[Any, ...]] = []
        for worker in self.workers:
            assert not running(worker), "read a worker's ClickHouse only once it stopped"
            client = open_client(f"chdb://{worker.workdir / 'clickhouse'}")
            try:
                result = client.query(sql, parameters={"t": tenant}).result_rows
                out.extend(tuple(row) for row in result)
            finally:
                client.close()
        return out

    def tails(self) -> str:
        return "\n\n".join(f"--- {w.app_id} {w.workdir.name}\n{w.tail(30)}" for w in self.workers)


def running(worker: WorkerProcess) -> bool:
    return worker.proc is not None and worker.proc.poll() is None


def assigned(worker: WorkerProcess, topic: str) -> set[int]:
    """The partitions of `topic` the worker was assigned last, from Faust's log table."""
    found = re.findall(
        rf"\| {re.escape(topic)} +\| \{{([0-9, -]+)\}}", worker.log_file.read_text(errors="replace")
    )
    parts: set[int] = set()
    for piece in found[-1].split(",") if found else []:
        first, _, last = piece.strip().partition("-")
        parts.update(range(int(first), int(last or first) + 1))
    return parts


def latest(rows: Iterable[tuple[Any, ...]], key_len: int) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    """ReplacingMergeTree(ingested_at) over rows `(*key, *values, ingested_at)`: one per key."""
    out: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    for row in rows:
        key = row[:key_len]
        if key not in out or row[-1] >= out[key][-1]:
            out[key] = row
    return out


@dataclass
class Asked:
    """What the callers saw: every final reply each request id got, and the repeats dropped."""

    finals: dict[str, list[LLMResponse]]
    unanswered: list[str]
    duplicates_dropped: int


async def ask_on(
    client: RequestClient,
    requests: Sequence[tuple[LLMRequest, int | None]],
    timeout: float,
) -> dict[str, list[LLMResponse]]:
    """Send every request at once, keyed by its id (to its partition, when one is given);
    every final reply each one's caller got."""

    async def one(request: LLMRequest, partition: int | None) -> list[LLMResponse]:
        rid = request.request_id
        stream = client.stream_raw(rid, rid.encode(), request.to_bytes(), timeout, partition)
        try:
            return [r async for r in stream if isinstance(r, LLMResponse)]
        except TimeoutError:
            return []

    got = await asyncio.gather(*(one(r, p) for r, p in requests))
    return {r.request_id: replies for (r, _), replies in zip(requests, got, strict=True)}


async def ask_all(
    kafka: KafkaConnection, requests: Sequence[tuple[LLMRequest, int | None]], timeout: float
) -> Asked:
    """`ask_on` a client of its own."""
    async with RequestClient(kafka) as client:
        finals = await ask_on(client, requests, timeout)
        return Asked(finals, [rid for rid, f in finals.items() if not f], client.duplicates)


def final_replies_on_topic(records: Iterable[dict[str, Any]], ids: set[str]) -> dict[str, int]:
    """How many final replies each of `ids` got on `llm.responses` (replays included)."""
    counts = dict.fromkeys(ids, 0)
    for rec in records:
        rid = rec.get("request_id")
        if rid in counts and rec.get("kind") != "chunk" and rec.get("final", True):
            counts[rid] += 1
    return counts
