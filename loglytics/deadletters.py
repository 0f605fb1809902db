"""Dead-lettering: the one way an agent gives up on a message, without losing it.

Why the sizes matter: a dead letter carries its original base64-encoded (4/3 of
it) beside where and why it failed, and it must fit the same record limit as
every other message (`MAX_MESSAGE_BYTES`, the topics' `max.message.bytes`). So
an original of up to `largest_whole_original()` bytes (about 3/4 of the limit)
is always carried whole; `loglytics send` cuts its batches there, so whatever
it ships the worker can give up on without losing a byte. A larger original (a
raw message another shipper made, up to the topic's limit) is cut to what fits,
the reason says so, and the letter's topic, partition and offset say where the
whole message still is; sending it whole would only have the producer refuse it.
"""

from __future__ import annotations

import base64
import logging
from typing import Any, Protocol, TypeVar

import faust
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from faust.types import EventT

from loglytics.kafka_clients import MAX_MESSAGE_BYTES
from loglytics.pipeline_metrics import PipelineMetrics
from loglytics.schemas import DeadLetter, DecodeError, Record

log = logging.getLogger(__name__)

# What the size bound assumes of a letter's metadata: the key is cut to this many bytes
# here, the reason by `DeadLetter.of`, a topic name is Kafka's at most 249 characters,
# and stage names are the code's own single words (well under STAGE_CHARS).
KEY_BYTES = 256
STAGE_CHARS = 64
TOPIC_CHARS = 249
# The record's length varints grow by a few bytes from an empty original to a full one.
VARINT_SLACK = 16


def record_bytes(value: bytes, key: bytes | None) -> int:
    """The size aiokafka's producer checks against `max_request_size` for one record."""
    return int(DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, []))


def largest_whole_original(limit: int = MAX_MESSAGE_BYTES) -> int:
    """The largest original a dead letter of at most `limit` bytes always carries whole.

    Measured on the largest envelope a letter can have: every metadata field at
    its cap, in characters JSON escapes to six bytes each (control characters).
    """
    worst = "\x00" * max(KEY_BYTES, STAGE_CHARS, 10_000)
    envelope = DeadLetter.of(
        worst[:STAGE_CHARS], worst, b"", topic="t" * TOPIC_CHARS, key=worst[:KEY_BYTES]
    ).model_copy(update={"partition": -(2**31), "offset": -(2**63), "ts": -1.7976931348623157e308})
    overhead = record_bytes(envelope.to_bytes(), worst[:STAGE_CHARS].encode()) + VARINT_SLACK
    return 3 * ((limit - overhead) // 4)


def _fitted(letter: DeadLetter, stage: str, limit: int) -> DeadLetter:
    """`letter` itself when it fits `limit`, else the same letter with its original cut to
    what fits and the reason saying so (the producer would refuse it whole)."""
    key = stage.encode()
    if record_bytes(letter.to_bytes(), key) <= limit:
        return letter
    original = letter.original
    cut = DeadLetter.of(
        stage,
        f"original of {len(original)} bytes cut to fit a dead letter: {letter.reason}",
        b"",
        topic=letter.topic,
        partition=letter.partition,
        offset=letter.offset,
        key=letter.key,
    ).model_copy(update={"ts": letter.ts})
    room = limit - record_bytes(cut.to_bytes(), key) - VARINT_SLACK
    kept = original[: max(0, 3 * (room // 4))]
    return cut.model_copy(update={"original_b64": base64.b64encode(kept).decode()})


class DeadLetterFn(Protocol):
    """What a stage is handed to give up on a message (a `DeadLetters`, or a test's recorder)."""

    async def __call__(
        self, stage: str, reason: str, event: EventT[Any] | None, original: bytes | None = None
    ) -> None: ...


M = TypeVar("M", bound=Record)


async def decoded(
    event: EventT[Any], model: type[M], stage: str, dead_letter: DeadLetterFn
) -> M | None:
    """The event's value as `model`, or None once it is dead-lettered with the reason."""
    value = event.message.value
    try:
        return model.from_bytes(value if isinstance(value, bytes) else b"")
    except DecodeError as exc:
        await dead_letter(stage, exc.reason, event)
        return None


class DeadLetters:
    """Sends the original bytes with the stage and reason to the `deadletter` topic."""

    def __init__(
        self, topic: faust.TopicT, metrics: PipelineMetrics, max_bytes: int = MAX_MESSAGE_BYTES
    ) -> None:
        self.topic = topic
        self.metrics = metrics
        self.max_bytes = max_bytes

    async def __call__(
        self, stage: str, reason: str, event: EventT[Any] | None, original: bytes | None = None
    ) -> None:
        if event is not None:
            msg = event.message
            key = msg.key[:KEY_BYTES] if isinstance(msg.key, (bytes, str)) else None
            letter = DeadLetter.of(
                stage,
                reason,
                original
                if original is not None
                else (msg.value if isinstance(msg.value, bytes) else None),
                topic=msg.topic,
                partition=msg.partition,
                offset=msg.offset,
                key=key,
            )
        else:
            letter = DeadLetter.of(stage, reason, original)
        letter = _fitted(letter, stage, self.max_bytes)
        log.warning("dead letter from %s: %s", stage, letter.reason)
        self.metrics.dead_letters.labels(stage=stage).inc()
        await self.topic.send(key=stage.encode(), value=letter.to_bytes())
