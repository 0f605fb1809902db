"""The detection agent: window digests in, findings out (to `findings`, and ClickHouse).

Digests come a few at a time, so a batch is usually cut by its wait: that is
the delay a finding pays after its window closes, kept as short as the ingest
agent's. One source's failure dead-letters that source's digests only.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from typing import cast

import faust
from faust.types import StreamT

from loglytics.deadletters import DeadLetterFn, decoded
from loglytics.detection.stage import DetectionStage
from loglytics.partitioning import source_key
from loglytics.pipeline_metrics import CountedFindings, PipelineMetrics
from loglytics.runtime import Runtime
from loglytics.schemas import WindowDigest

log = logging.getLogger(__name__)

BATCH_DIGESTS = 500
BATCH_WITHIN = 0.25
STAGE = "detection"


def register(
    app: faust.App,
    runtime: Runtime,
    *,
    windows: faust.TopicT,
    findings: faust.TopicT,
    dead_letter: DeadLetterFn,
    metrics: PipelineMetrics,
) -> DetectionStage:
    """Declare the detection tables and agent on the app."""
    stage = DetectionStage(
        runtime,
        # tenant/source#baseline -> the source's adaptive baseline (see detection.baseline)
        baselines=app.Table("detection-baselines", default=None, key_type=bytes),
        # tenant#judgement_key -> the cached verdict. Per tenant, not per source, and
        # global: a pattern judged for one source (or an earlier replay) is not judged
        # again. Bounded by the tenant's templates times signal kinds.
        verdicts=app.GlobalTable("verdicts", default=None, key_type=bytes),
        # The topic, with each finding counted (a TopicT in all the stage uses: `send`).
        findings_out=cast(faust.TopicT, CountedFindings(findings, metrics)),
    )

    @app.agent(windows, name="loglytics.detection")
    async def detect(stream: StreamT[bytes]) -> None:
        """Consume window digests in batches; a bad digest is dead-lettered, never fatal."""
        batches = stream.take_events(BATCH_DIGESTS, within=BATCH_WITHIN)  # type: ignore[attr-defined]
        async for events in batches:
            groups: dict[str, list[WindowDigest]] = defaultdict(list)
            for event in events:
                digest = await decoded(event, WindowDigest, STAGE, dead_letter)
                if digest is None:
                    continue
                groups[source_key(digest.tenant, digest.source)].append(digest)
            await _detect_groups(stage, groups, dead_letter)
            rt = await runtime.ready()
            if rt.sink is not None:
                await rt.sink.flush()

    return stage


async def _detect_groups(
    stage: DetectionStage, groups: dict[str, list[WindowDigest]], dead_letter: DeadLetterFn
) -> None:
    results = await asyncio.gather(
        *(stage.detect_source(digests) for digests in groups.values()),
        return_exceptions=True,
    )
    for (key, digests), result in zip(groups.items(), results, strict=True):
        if isinstance(result, BaseException):
            log.error("detection failed for %s", key, exc_info=result)
            for digest in digests:
                await dead_letter(STAGE, f"internal error: {result!r}", None, digest.to_bytes())
