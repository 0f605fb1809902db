"""The ingest stage's per-worker state and its batch step: raw messages in, digests out.

The agent (`loglytics.ingest.agent`) takes events in batches and touches each
tenant/source's table rows once per batch, so the changelog (and the producer)
pay per batch, not per line; a template's own row is written only when the
template changes shape. The rows are named state (`loglytics.ingest.state`).
Replayed messages (offset at or below the one recorded in the state) are
skipped, which makes a crash-and-restart count every line exactly once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson
from prometheus_client import CollectorRegistry

from loglytics.deadletters import DeadLetterFn
from loglytics.ingest.pipeline import Decoded, SourcePipeline
from loglytics.ingest.state import SourceState, StoredSourceState, WindowAcc, load_source_state
from loglytics.ingest.windows import add_batch, closable, to_digest
from loglytics.mining import TemplateRecord, TemplateState
from loglytics.partitioning import source_key, state_key
from loglytics.pipeline_metrics import PipelineMetrics
from loglytics.schemas import WindowDigest
from loglytics.settings import Settings

log = logging.getLogger(__name__)

# Messages per batch: enough to amortise the per-source state write (a changelog record
# each, which the embedded broker takes one round trip at a time), few enough that a
# batch of large LogBatches (a few hundred lines each) stays small in memory.
BATCH_EVENTS = 512
BATCH_WITHIN = 0.25

Message = tuple[Decoded, int, int]
"""A decoded message with the partition and offset it came from."""


class DigestOut(Protocol):
    """Where digests go: the `logs.windows` topic (its producer buffer), or a test's recorder.

    `send_soon` returns what resolves once the digest is delivered."""

    def send_soon(self, *, key: bytes, value: bytes) -> Awaitable[Any]: ...


@dataclass(slots=True)
class SourceWork:
    """One tenant/source's share of a batch: its inputs, and what `compute` made of them."""

    key: str
    messages: list[Message]
    state: SourceState
    pipe: SourcePipeline
    lines: int = 0
    absorbed: bool = False
    closed: list[WindowAcc] = field(default_factory=list)
    templates: list[TemplateState] = field(default_factory=list)
    error: Exception | None = None


class IngestStage:
    """Per-worker parsing/mining pipelines, rebuilt from the tables after a restart or rebalance."""

    def __init__(
        self,
        settings: Settings,
        *,
        state_table: MutableMapping[bytes, StoredSourceState],
        template_table: MutableMapping[bytes, TemplateRecord],
        windows_out: DigestOut,
        dead_letter: DeadLetterFn,
        metrics: PipelineMetrics | None = None,
    ) -> None:
        self.metrics = metrics or PipelineMetrics(CollectorRegistry())  # tests: their own
        self.settings = settings
        self.state_table = state_table
        self.template_table = template_table
        self.windows = windows_out
        self.dead_letter = dead_letter
        self.pipelines: dict[str, SourcePipeline] = {}
        self.last_arrival: dict[str, float] = {}
        self.lines_in = 0
        self.windows_out = 0
        self.lock = asyncio.Lock()

    def pipeline(self, tenant: str, source: str) -> SourcePipeline:
        key = source_key(tenant, source)
        pipe = self.pipelines.get(key)
        if pipe is None:
            prefix = (key + "#").encode()
            states = [
                TemplateState.from_dict(v)
                for k, v in self.template_table.items()
                if isinstance(k, bytes) and k.startswith(prefix) and v
            ]
            saved = load_source_state(self.state_table.get(key.encode()))
            pipe = SourcePipeline(
                tenant,
                source,
                max_line_bytes=self.settings.max_line_bytes,
                future_tolerance=self.settings.future_tolerance_seconds,
                templates=sorted(states, key=lambda s: s.first_seen),
                activity=saved["activity"],
                parsing=saved.get("parsing"),
            )
            self.pipelines[key] = pipe
        return pipe

    def forget(self) -> None:
        """On rebalance: partitions may have moved, so rebuild pipelines from the tables."""
        self.pipelines.clear()

    def emit(
        self, tenant: str, source: str, wins: list[WindowAcc], closed_by: str
    ) -> list[Awaitable[Any]]:
        """Queue the digests on the app's producer buffer; their deliveries, to await.

        Queued together and awaited together (by the caller, before it writes the
        state rows that say these windows closed): with the embedded broker each
        record is its own produce request, and waiting for each in turn would
        stall the batch once per digest.
        """
        pipe = self.pipelines.get(source_key(tenant, source))

        def template_of(tid: str) -> str | None:
            if pipe is None:
                return None
            tpl = pipe.miner.template(pipe.miner.resolve(tid))
            return tpl.template if tpl else None

        deliveries = []
        key = source_key(tenant, source).encode()
        for win in wins:
            digest: WindowDigest = to_digest(tenant, source, win, closed_by, template_of)
            deliveries.append(self.windows.send_soon(key=key, value=digest.to_bytes()))
            self.windows_out += 1
        return deliveries

    def compute(self, work: list[SourceWork], arrival: float) -> None:
        """Parse, mine and window a batch's messages: the CPU work, apart from all I/O.

        Touches only the pipelines and state dicts handed in (no table, no
        producer), which keeps it testable without Kafka; a failure is kept on
        its source's work item, so one source's bug does not stop the others.
        (Run in a thread, to fetch the next batch meanwhile, it was no faster
        in five interleaved pairs of bench runs: the GIL serialises the two.)
        """
        settings = self.settings
        for item in work:
            try:
                state, pipe = item.state, item.pipe
                offsets = state["offsets"]
                for message, partition, offset in item.messages:
                    if offset <= offsets.get(str(partition), -1):
                        continue  # already counted before a restart
                    batch = pipe.process_batch(message, arrival)
                    add_batch(
                        state, batch, settings.window_seconds, settings.allowed_lateness_seconds
                    )
                    offsets[str(partition)] = offset
                    item.lines += len(batch)
                    self.metrics.parsed(message.format, len(message.lines), len(batch))
                    item.absorbed = True
                if item.absorbed:
                    state["last_arrival"] = arrival
                    item.closed = closable(state, settings.allowed_lateness_seconds, idle=False)
                    item.templates = pipe.miner.export_dirty()
                    # Counts and recency of the templates ride in the state row, with the
                    # offsets they match: one changelog record per source and batch.
                    state["activity"] = pipe.miner.activity()
                    pipe.keep_parsing(state)  # learned headers, events held for the next message
            except Exception as exc:  # kept for `absorb`, which dead-letters the messages
                item.error = exc

    async def absorb(self, groups: dict[str, list[Message]]) -> None:
        """One batch: table reads, then `compute`, then table writes and emits.

        The table rows of each tenant/source are read and written once per batch.
        Whatever fails for one source (a bug, a table row it cannot restore from)
        dead-letters that source's messages and leaves the others alone.
        """
        arrival = time.time()
        work: list[SourceWork] = []
        for key, messages in groups.items():
            try:
                state = load_source_state(self.state_table.get(key.encode()))
                pipe = self.pipeline(messages[0][0].tenant, messages[0][0].source)
            except Exception as exc:
                await self._give_up(key, messages, exc)
                continue
            work.append(SourceWork(key, messages, state, pipe))
        async with self.lock:  # the idle timer must not close windows of a state in flight
            self.compute(work, arrival)
            emitted: list[SourceWork] = []
            deliveries: list[Awaitable[Any]] = []
            for item in work:
                try:
                    if item.error is not None:
                        await self._give_up(item.key, item.messages, item.error)
                    elif item.absorbed:
                        deliveries.extend(self._emit_closed(item))
                        emitted.append(item)
                except Exception as exc:
                    await self._give_up(item.key, item.messages, exc)
            # Digests delivered before the rows that say their windows closed: a crash in
            # between replays the messages and sends the same digests again, where the
            # other order would leave the next owner with the windows closed and lost.
            await asyncio.gather(*deliveries)
            for item in emitted:
                try:
                    self._write_rows(item)
                except Exception as exc:
                    await self._give_up(item.key, item.messages, exc)

    def _emit_closed(self, item: SourceWork) -> list[Awaitable[Any]]:
        """Queue the digests of the windows the batch closed; their deliveries."""
        if not item.closed:
            return []
        tenant, source = item.messages[0][0].tenant, item.messages[0][0].source
        return self.emit(tenant, source, item.closed, "watermark")

    def _write_rows(self, item: SourceWork) -> None:
        """Write the source's table rows (its state and changed templates)."""
        tenant, source = item.messages[0][0].tenant, item.messages[0][0].source
        self.lines_in += item.lines
        self.last_arrival[item.key] = time.monotonic()
        for tpl in item.templates:
            tkey = state_key(tenant, source, tpl.template_id).encode()
            if tpl.evicted:
                self.template_table.pop(tkey, None)  # capped out: its key goes too (bounded state)
            else:
                self.template_table[tkey] = tpl.to_dict()
        self.state_table[item.key.encode()] = item.state

    async def _give_up(self, key: str, messages: list[Message], exc: BaseException) -> None:
        """A bug must not stop the stream: dead-letter the source's messages of this batch."""
        log.error("ingest failed for %s", key, exc_info=exc)
        self.pipelines.pop(key, None)  # its miner may be half-updated: rebuild from the tables
        for message, _partition, _offset in messages:
            await self.dead_letter(
                "ingest", f"internal error: {exc!r}", None, "\n".join(message.lines).encode()
            )

    def _flush_held(self, key: str, state: SourceState) -> None:
        """A quiet source's held event (a trace, a line one may follow) joins its windows now."""
        pipe = self.pipelines.get(key)
        batch = pipe.flush_held(time.time()) if pipe is not None else None
        if pipe is None or batch is None:
            return
        settings = self.settings
        add_batch(state, batch, settings.window_seconds, settings.allowed_lateness_seconds)
        state["activity"] = pipe.miner.activity()
        pipe.keep_parsing(state)
        self.lines_in += len(batch)

    async def close_idle(self) -> None:
        """Close every open window of sources that have gone quiet (the timer's job)."""
        idle_after = self.settings.window_idle_close_seconds
        async with self.lock:
            now = time.monotonic()
            for key, seen in list(self.last_arrival.items()):
                if now - seen < idle_after:
                    continue
                bkey = key.encode()
                row = self.state_table.get(bkey)
                del self.last_arrival[key]
                if not row:
                    continue
                state = load_source_state(row)
                self._flush_held(key, state)
                if not state["windows"]:
                    continue
                tenant, source = key.split("/", 1)
                closed = closable(state, self.settings.allowed_lateness_seconds, idle=True)
                try:
                    await asyncio.gather(*self.emit(tenant, source, closed, "idle"))
                except Exception as exc:  # the timer must keep ticking for the other sources
                    log.exception("closing the idle windows of %s failed", key)
                    await self.dead_letter(
                        "windows", f"internal error: {exc!r}", None, orjson.dumps(closed)
                    )
                self.state_table[bkey] = state  # after the deliveries, as in `absorb`
