"""The ingest agent: `logs.raw` in, window digests to `logs.windows`.

Windows close on time, not only on the next message: the agent closes a
window when the watermark (newest event time minus the allowed lateness)
passes its end, but a source that goes quiet has no next message to advance
its watermark, so a timer closes its open windows once it has been idle for
`WINDOW_IDLE_CLOSE_SECONDS`.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, cast

import faust
from faust.types import EventT, StreamT

from loglytics.deadletters import DeadLetterFn
from loglytics.ingest.pipeline import Rejected, decode_message
from loglytics.ingest.stage import BATCH_EVENTS, BATCH_WITHIN, IngestStage, Message
from loglytics.ingest.tables import declare_tables
from loglytics.partitioning import source_key
from loglytics.pipeline_metrics import CountedWindows, PipelineMetrics
from loglytics.settings import Settings


def register(
    app: faust.App,
    settings: Settings,
    *,
    raw_logs: faust.TopicT,
    windows: faust.TopicT,
    dead_letter: DeadLetterFn,
    metrics: PipelineMetrics,
) -> IngestStage:
    """Declare the ingest tables, agent, idle-close timer and rebalance hook on the app."""
    tables = declare_tables(app)
    stage = IngestStage(
        settings,
        state_table=tables.state,
        template_table=tables.templates,
        windows_out=CountedWindows(windows, metrics),
        dead_letter=dead_letter,
        metrics=metrics,
    )

    @app.agent(raw_logs, name="loglytics.ingest")
    async def ingest(stream: StreamT[bytes]) -> None:
        """Consume raw logs in batches; bad messages go to `deadletter`, never crash the agent."""
        # `take_events` exists on faust's Stream, not on its StreamT protocol.
        batches = stream.take_events(BATCH_EVENTS, within=BATCH_WITHIN)  # type: ignore[attr-defined]
        async for events in batches:
            groups: dict[str, list[Message]] = defaultdict(list)
            for event in events:
                await _decode_into(event, groups, dead_letter, metrics)
            if groups:
                await stage.absorb(groups)

    # The timer ticks at a quarter of the idle threshold (at most once a second), so a
    # quiet source's windows close within 1.25 idle periods rather than up to two.
    interval = min(1.0, settings.window_idle_close_seconds / 4)

    @app.timer(interval=interval, name="loglytics.ingest.close_idle")  # type: ignore[untyped-decorator]
    async def close_idle_windows() -> None:
        await stage.close_idle()

    def on_rebalance(sender: Any, *args: Any, signal: Any, **kwargs: Any) -> None:
        """Partitions may have moved: pipelines are rebuilt from the tables on next use."""
        stage.forget()

    # mode types receivers with a Protocol that mypy matches to no plain function.
    app.on_rebalance_complete.connect(cast(Any, on_rebalance))
    return stage


async def _decode_into(
    event: EventT[Any],
    groups: dict[str, list[Message]],
    dead_letter: DeadLetterFn,
    metrics: PipelineMetrics,
) -> None:
    msg = event.message
    value = msg.value if isinstance(msg.value, bytes) else None
    key = msg.key if isinstance(msg.key, bytes) else None
    result = decode_message(key, value, msg.headers)
    if isinstance(result, Rejected):
        await dead_letter("ingest", result.reason, event)
        return
    metrics.ingested(result.format, len(result.lines) + len(result.events))
    groups[source_key(result.tenant, result.source)].append((result, msg.partition, msg.offset))
