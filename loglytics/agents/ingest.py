"""The ingest agent: `logs.raw` in, window digests out (through `loglytics.agents.windows`).

It takes events in batches and touches each tenant/source's table rows once
per batch, so the changelog (and the producer) pay per batch, not per line;
a template's own row is written only when the template changes shape.
Replayed messages (offset at or below the one recorded in the state) are
skipped, which makes a crash-and-restart count every line exactly once.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from typing import Any, cast

from faust.types import EventT, StreamT

from loglytics.agents.deadletters import dead_letter
from loglytics.agents.state import ingest_state, template_table
from loglytics.app import app
from loglytics.ingestion import Decoded, Rejected, SourcePipeline, decode_message
from loglytics.mining import TemplateState
from loglytics.partitioning import source_key, state_key
from loglytics.schemas import WindowDigest
from loglytics.settings import get_settings
from loglytics.topics import raw_logs_topic, windows_topic
from loglytics.windowing import add_batch, closable, new_source_state, to_digest

log = logging.getLogger(__name__)

# Messages per batch: enough to amortise the per-source state write (a changelog record
# each, which the embedded broker takes one round trip at a time), few enough that a
# batch of large LogBatches (a few hundred lines each) stays small in memory.
BATCH_EVENTS = 512
BATCH_WITHIN = 0.25


class IngestStage:
    """Per-worker parsing/mining pipelines, rebuilt from the tables after a restart or rebalance."""

    def __init__(self) -> None:
        self.settings = get_settings()
        self.pipelines: dict[str, SourcePipeline] = {}
        self.last_arrival: dict[str, float] = {}
        self.lines_in = 0
        self.windows_out = 0

    def pipeline(self, tenant: str, source: str) -> SourcePipeline:
        key = source_key(tenant, source)
        pipe = self.pipelines.get(key)
        if pipe is None:
            prefix = (key + "#").encode()
            states = [
                TemplateState.from_dict(v)
                for k, v in template_table.items()
                if isinstance(k, bytes) and k.startswith(prefix) and v
            ]
            saved = ingest_state.get(key.encode()) or {}
            pipe = SourcePipeline(
                tenant,
                source,
                max_line_bytes=self.settings.max_line_bytes,
                future_tolerance=self.settings.future_tolerance_seconds,
                templates=sorted(states, key=lambda s: s.first_seen),
                activity=saved.get("activity"),
            )
            self.pipelines[key] = pipe
        return pipe

    def forget(self) -> None:
        """On rebalance: partitions may have moved, so rebuild pipelines from the tables."""
        self.pipelines.clear()

    async def emit(
        self, tenant: str, source: str, wins: list[dict[str, Any]], closed_by: str
    ) -> None:
        pipe = self.pipelines.get(source_key(tenant, source))

        def template_of(tid: str) -> str | None:
            if pipe is None:
                return None
            tpl = pipe.miner.template(pipe.miner.resolve(tid))
            return tpl.template if tpl else None

        for win in wins:
            digest: WindowDigest = to_digest(tenant, source, win, closed_by, template_of)
            await windows_topic.send(
                key=source_key(tenant, source).encode(), value=digest.to_bytes()
            )
            self.windows_out += 1

    async def absorb(
        self, key: str, decoded: list[tuple[Decoded, int, int]], arrival: float
    ) -> None:
        """Parse, mine and window one tenant/source's messages of a batch; one state write."""
        tenant, source = decoded[0][0].tenant, decoded[0][0].source
        bkey = key.encode()
        state: dict[str, Any] = ingest_state.get(bkey) or new_source_state()
        pipe = self.pipeline(tenant, source)
        settings = self.settings
        absorbed = False
        offsets: dict[str, int] = state.setdefault("offsets", {})
        for message, partition, offset in decoded:
            if offset <= offsets.get(str(partition), -1):
                continue  # already counted before a restart
            batch = pipe.process_batch(message, arrival)
            add_batch(state, batch, settings.window_seconds, settings.allowed_lateness_seconds)
            offsets[str(partition)] = offset
            self.lines_in += len(batch)
            absorbed = True
        if not absorbed:
            return
        state["last_arrival"] = arrival
        self.last_arrival[key] = time.monotonic()
        closed = closable(state, settings.allowed_lateness_seconds, idle=False)
        if closed:
            await self.emit(tenant, source, closed, "watermark")
        for tpl in pipe.miner.export_dirty():
            tkey = state_key(tenant, source, tpl.template_id).encode()
            if tpl.evicted:
                template_table.pop(tkey, None)  # capped out: its key goes too (bounded state)
            else:
                template_table[tkey] = tpl.to_dict()
        # Counts and recency of the templates ride in the state row, with the offsets they
        # match: one changelog record per source and batch, however many templates were seen.
        state["activity"] = pipe.miner.activity()
        ingest_state[bkey] = state

    async def close_idle(self) -> None:
        """Close every open window of sources that have gone quiet (the timer's job)."""
        idle_after = self.settings.window_idle_close_seconds
        now = time.monotonic()
        for key, seen in list(self.last_arrival.items()):
            if now - seen < idle_after:
                continue
            bkey = key.encode()
            state = ingest_state.get(bkey)
            del self.last_arrival[key]
            if not state or not state["windows"]:
                continue
            tenant, source = key.split("/", 1)
            closed = closable(state, self.settings.allowed_lateness_seconds, idle=True)
            await self.emit(tenant, source, closed, "idle")
            ingest_state[bkey] = state


stage = IngestStage()


@app.agent(raw_logs_topic)
async def ingest(stream: StreamT[bytes]) -> None:
    """Consume raw logs in batches; bad messages go to `deadletter`, never crash the agent."""
    # `take_events` exists on faust's Stream, not on its StreamT protocol.
    batches = stream.take_events(BATCH_EVENTS, within=BATCH_WITHIN)  # type: ignore[attr-defined]
    async for events in batches:
        arrival = time.time()
        groups: dict[str, list[tuple[Decoded, int, int]]] = defaultdict(list)
        for event in events:
            await _decode_into(event, groups)
        for key, decoded in groups.items():
            try:
                await stage.absorb(key, decoded, arrival)
            except Exception as exc:  # a bug must not stop the stream: dead-letter the batch
                log.exception("ingest failed for %s", key)
                for message, _partition, _offset in decoded:
                    await dead_letter(
                        "ingest",
                        f"internal error: {exc!r}",
                        None,
                        "\n".join(message.lines).encode(),
                    )


async def _decode_into(
    event: EventT[Any], groups: dict[str, list[tuple[Decoded, int, int]]]
) -> None:
    msg = event.message
    value = msg.value if isinstance(msg.value, bytes) else None
    key = msg.key if isinstance(msg.key, bytes) else None
    result = decode_message(key, value, msg.headers)
    if isinstance(result, Rejected):
        await dead_letter("ingest", result.reason, event)
        return
    groups[source_key(result.tenant, result.source)].append((result, msg.partition, msg.offset))


def _on_rebalance(sender: Any, *args: Any, signal: Any, **kwargs: Any) -> None:
    """Partitions may have moved: pipelines are rebuilt from the tables on next use."""
    stage.forget()


# mode types receivers with a Protocol that mypy matches to no plain function.
app.on_rebalance_complete.connect(cast(Any, _on_rebalance))
