"""Dead-lettering: the one way an agent gives up on a message, without losing it."""

from __future__ import annotations

import logging
from typing import Any, Protocol

import faust
from faust.types import EventT

from loglytics.pipeline_metrics import PipelineMetrics
from loglytics.schemas import DeadLetter

log = logging.getLogger(__name__)


class DeadLetterFn(Protocol):
    """What a stage is handed to give up on a message (a `DeadLetters`, or a test's recorder)."""

    async def __call__(
        self, stage: str, reason: str, event: EventT[Any] | None, original: bytes | None = None
    ) -> None: ...


class DeadLetters:
    """Sends the original bytes with the stage and reason to the `deadletter` topic."""

    def __init__(self, topic: faust.TopicT, metrics: PipelineMetrics) -> None:
        self.topic = topic
        self.metrics = metrics

    async def __call__(
        self, stage: str, reason: str, event: EventT[Any] | None, original: bytes | None = None
    ) -> None:
        if event is not None:
            msg = event.message
            letter = DeadLetter.of(
                stage,
                reason,
                original
                if original is not None
                else (msg.value if isinstance(msg.value, bytes) else None),
                topic=msg.topic,
                partition=msg.partition,
                offset=msg.offset,
                key=msg.key if isinstance(msg.key, (bytes, str)) else None,
            )
        else:
            letter = DeadLetter.of(stage, reason, original)
        log.warning("dead letter from %s: %s", stage, reason)
        self.metrics.dead_letters.labels(stage=stage).inc()
        await self.topic.send(key=stage.encode(), value=letter.to_bytes())
