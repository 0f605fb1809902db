"""`ClickHouseSink`: batched, retrying, never-blocking writes from async agents.

Why this shape:

* Agents run on one event loop; a ClickHouse insert (HTTP round trip, or chdb
  doing real work in-process) must never run on it. ``add_*`` only appends to an
  in-memory buffer; a background task writes via ``asyncio.to_thread``.
* Nothing is dropped: a failed batch stays queued and is retried with capped,
  jittered exponential backoff until it lands or ``stop`` gives up (and says how
  many rows are still pending). The one exception is a row the client cannot
  encode at all (a client-side ``DataError``): retrying it would wedge the queue
  forever, so it is bisected out, kept in ``rejected`` and counted in
  ``rows_rejected``; its batch-mates are still written.
* Nothing is duplicated: once rows are cut into a batch, that batch is retried
  as-is with the same ``insert_deduplication_token``, so a batch that actually
  landed before its acknowledgement was lost is dropped by the server; on top of
  that every table is a ReplacingMergeTree keyed by the row's identity.
* Bounded memory, by backpressure: when ``rows_pending`` reaches
  ``max_pending_rows``, ``add_*`` raises `SinkFullError` without enqueuing
  anything (all or nothing per call). Producers that can wait call
  ``await sink.wait_capacity()`` first; it returns once the writer drained below
  the cap. Raising rather than blocking keeps ``add_*`` synchronous and cheap and
  lets a Kafka consumer stop fetching instead of buffering without limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from clickhouse_connect.driver.exceptions import DataError

from loglytics.schemas import (
    Finding,
    Incident,
    IncidentFeedback,
    TenantRecord,
    UsageRecord,
    WindowDigest,
)
from loglytics.storage.registry import Row
from loglytics.storage.rows import (
    TemplateRow,
    feedback_row,
    finding_row,
    incident_row,
    template_row,
    tenant_row,
    to_datetime,
    usage_row,
    window_rows,
)
from loglytics.storage.tables import TABLE_SPECS, table_spec

__all__ = [
    "ClickHouseSink",
    "Inserter",
    "SinkError",
    "SinkFullError",
    "TemplateRow",
    "finding_row",
    "to_datetime",
]

log = logging.getLogger(__name__)

# Raised by clickhouse-connect while encoding rows, before anything is sent: never transient.
_DATA_ERRORS = (DataError, TypeError, ValueError, OverflowError)


class Inserter(Protocol):
    """The one call the sink makes (a clickhouse-connect `Client` satisfies it)."""

    def insert(
        self,
        table: str,
        data: Sequence[Sequence[Any]],
        /,
        *,
        column_names: Sequence[str],
        settings: dict[str, Any],
    ) -> object: ...


class SinkError(RuntimeError):
    """The sink could not write everything in time; ``pending`` rows are still queued."""

    def __init__(self, message: str, pending: int) -> None:
        super().__init__(message)
        self.pending = pending


class SinkFullError(SinkError):
    """``rows_pending`` reached the cap: wait (``await sink.wait_capacity()``) and retry."""


@dataclass
class _Batch:
    """Rows cut for one insert; retried unchanged so its dedup token stays valid."""

    table: str
    rows: list[Row]
    token: str = field(default_factory=lambda: uuid.uuid4().hex)
    attempts: int = 0


class ClickHouseSink:
    """Buffered writer for all storage tables; see the module docstring for guarantees."""

    def __init__(
        self,
        client: Inserter,
        *,
        flush_interval_ms: int = 1000,
        max_batch_rows: int = 5000,
        max_pending_rows: int = 500_000,
        retry_base_s: float = 0.2,
        retry_max_s: float = 30.0,
        on_insert: Callable[[str, int, float], None] | None = None,
    ) -> None:
        if flush_interval_ms <= 0 or max_batch_rows <= 0 or max_pending_rows <= 0:
            raise ValueError("flush_interval_ms, max_batch_rows and max_pending_rows must be > 0")
        self._client = client
        self._on_insert = on_insert  # (table, rows, seconds) of each batch written
        self._interval = flush_interval_ms / 1000
        self._max_batch = max_batch_rows
        self._cap = max_pending_rows
        self._retry_base = retry_base_s
        self._retry_max = retry_max_s
        self._buffers: dict[str, list[Row]] = {t.name: [] for t in TABLE_SPECS}
        self._buffered = 0
        self._batches: deque[_Batch] = deque()
        self._write_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._drained = asyncio.Event()
        self._drained.set()
        self._task: asyncio.Task[None] | None = None
        self._retry_at = 0.0  # monotonic time before which the writer should not retry
        self._consecutive_failures = 0
        self.rows_written = 0
        self.failures = 0
        self.last_error: str | None = None
        self.rows_rejected = 0
        self.rejected: deque[tuple[str, Row, str]] = deque(maxlen=1000)

    # -- counters -------------------------------------------------------------------------

    @property
    def rows_pending(self) -> int:
        """Rows accepted but not yet written (buffered plus cut into batches)."""
        return self._buffered + sum(len(b.rows) for b in self._batches)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the background writer (idempotent)."""
        if not self.running:
            self._task = asyncio.create_task(self._run(), name="clickhouse-sink")

    async def stop(self, timeout: float | None = 30.0) -> None:
        """Stop the writer after flushing; raises `SinkError` if rows remain after ``timeout``."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.flush(timeout=timeout)

    async def flush(self, timeout: float | None = None) -> None:
        """Write everything accepted so far, retrying with backoff until done or ``timeout``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.rows_pending:
            if await self._write_pending(force=True):
                continue
            delay = max(0.0, self._retry_at - time.monotonic())
            if deadline is not None and time.monotonic() + delay > deadline:
                raise SinkError(
                    f"flush timed out with {self.rows_pending} rows pending "
                    f"(last error: {self.last_error})",
                    self.rows_pending,
                )
            await asyncio.sleep(delay)

    async def wait_capacity(self, timeout: float | None = None) -> None:
        """Wait until ``rows_pending`` is below the cap (the backpressure hook for producers)."""
        if self.rows_pending >= self._cap and not self.running:
            raise SinkError("sink is full and not started: nothing drains it", self.rows_pending)
        async with asyncio.timeout(timeout):
            while self.rows_pending >= self._cap:
                self._wake.set()
                self._drained.clear()
                await self._drained.wait()

    # -- enqueue (synchronous, never blocks) ----------------------------------------------

    def add_findings(self, findings: Iterable[Finding]) -> None:
        self._enqueue({"findings": [finding_row(f) for f in findings]})

    def add_incident(self, incident: Incident) -> None:
        """One row per incident event; ReplacingMergeTree keeps each incident's latest."""
        self._enqueue({"incidents": [incident_row(incident)]})

    def add_feedback(self, feedback: IncidentFeedback) -> None:
        """One row per feedback record (ack, resolve, mute, unmute), replays replaced."""
        self._enqueue({"incident_feedback": [feedback_row(feedback)]})

    def add_window(self, digest: WindowDigest) -> None:
        """One row per template into ``window_stats`` and one totals row into ``windows``."""
        stats, total = window_rows(digest)
        self._enqueue({"window_stats": stats, "windows": [total]})

    def add_templates(self, templates: Iterable[TemplateRow]) -> None:
        self._enqueue({"templates": [template_row(t) for t in templates]})

    def add_usage(self, usage: UsageRecord) -> None:
        self._enqueue({"llm_usage": [usage_row(usage)]})

    def add_tenant(self, tenant: TenantRecord) -> None:
        """Mirror a tenant without its key hashes (secrets stay in the tenants topic)."""
        self._enqueue({"tenants": [tenant_row(tenant)]})

    def _enqueue(self, rows_by_table: dict[str, list[Row]]) -> None:
        n = sum(len(rows) for rows in rows_by_table.values())
        if n == 0:
            return
        if self.rows_pending >= self._cap:
            raise SinkFullError(
                f"ClickHouse sink holds {self.rows_pending} unwritten rows (cap {self._cap}); "
                f"await wait_capacity() (last error: {self.last_error})",
                self.rows_pending,
            )
        for table, rows in rows_by_table.items():
            self._buffers[table].extend(rows)
        self._buffered += n
        if self._buffered >= self._max_batch:
            self._wake.set()

    # -- writing --------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval):
                    await self._wake.wait()
            self._wake.clear()
            wait = self._retry_at - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                await self._write_pending(force=False)
            except asyncio.CancelledError:
                raise
            except Exception:  # never let the writer die; the error is counted and logged
                log.exception("ClickHouse sink writer error")

    def _cut_batches(self) -> None:
        for table, rows in self._buffers.items():
            for i in range(0, len(rows), self._max_batch):
                self._batches.append(_Batch(table, rows[i : i + self._max_batch]))
            rows.clear()
        self._buffered = 0

    async def _write_pending(self, *, force: bool) -> bool:
        """Write queued batches in order; False at the first failure (backoff armed)."""
        async with self._write_lock:
            if not force and time.monotonic() < self._retry_at:
                return False
            self._cut_batches()
            while self._batches:
                batch = self._batches[0]
                try:
                    await self._insert_shielded(batch)
                except asyncio.CancelledError:
                    raise
                except _DATA_ERRORS as exc:
                    self._isolate(batch, exc)
                    continue
                except Exception as exc:
                    batch.attempts += 1
                    self.failures += 1
                    self._consecutive_failures += 1
                    self.last_error = f"{type(exc).__name__}: {exc}"[:500]
                    delay = min(
                        self._retry_max, self._retry_base * 2 ** (self._consecutive_failures - 1)
                    )
                    self._retry_at = time.monotonic() + delay * random.uniform(0.5, 1.0)
                    log.warning(
                        "ClickHouse insert into %s failed (attempt %d, %d rows pending): %s",
                        batch.table, batch.attempts, self.rows_pending, self.last_error,
                    )  # fmt: skip
                    return False
                self._batches.popleft()
                self.rows_written += len(batch.rows)
                self._consecutive_failures = 0
                self._retry_at = 0.0
                if self.rows_pending < self._cap:
                    self._drained.set()
            return True

    def _isolate(self, batch: _Batch, exc: Exception) -> None:
        """A row the client cannot serialise would block everything behind it forever.

        Such errors happen before anything is sent, so the batch is split in halves
        (bisecting to the bad rows) and a single bad row is quarantined in
        ``rejected`` and counted in ``rows_rejected``: kept and visible, not retried.
        """
        self._batches.popleft()
        if len(batch.rows) > 1:
            mid = len(batch.rows) // 2
            self._batches.appendleft(_Batch(batch.table, batch.rows[mid:]))
            self._batches.appendleft(_Batch(batch.table, batch.rows[:mid]))
            return
        error = f"{type(exc).__name__}: {exc}"[:500]
        self.rows_rejected += 1
        self.rejected.append((batch.table, batch.rows[0], error))
        log.error("ClickHouse sink rejected a row of %s it cannot encode: %s", batch.table, error)

    async def _insert_shielded(self, batch: _Batch) -> None:
        """Insert in a thread; if cancelled meanwhile, learn the outcome before re-raising.

        A thread cannot be cancelled, so abandoning it would leave the batch queued
        while its insert may still land; the next writer would then race it.
        """
        future = asyncio.ensure_future(asyncio.to_thread(self._insert, batch))
        try:
            await asyncio.shield(future)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await future
                self._batches.popleft()
                self.rows_written += len(batch.rows)
            raise

    def _insert(self, batch: _Batch) -> None:
        started = time.perf_counter()
        self._client.insert(
            batch.table,
            batch.rows,
            column_names=list(table_spec(batch.table).insert_columns),
            settings={"insert_deduplication_token": batch.token, "async_insert": 0},
        )
        if self._on_insert is not None:
            self._on_insert(batch.table, len(batch.rows), time.perf_counter() - started)
