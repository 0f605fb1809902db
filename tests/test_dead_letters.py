"""Dead letters keep their original: whole up to the documented size, cut (and saying so,
with where the whole message is) beyond it, and never a letter the producer would refuse.

Why: a stage that gives up on a message must not lose it, and must not crash on a
message it cannot forward (aiokafka raises `MessageSizeTooLargeError` before sending
a record over `max_request_size`). The letters are measured the way the producer
measures them (`record_bytes`, aiokafka's own estimate).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, cast

import pytest
from faust.types import EventT
from prometheus_client import CollectorRegistry

from loglytics.deadletters import KEY_BYTES, DeadLetters, largest_whole_original, record_bytes
from loglytics.kafka_clients import MAX_MESSAGE_BYTES
from loglytics.pipeline_metrics import PipelineMetrics
from loglytics.schemas import DeadLetter


@dataclass
class SentTopic:
    """Stands in for the `deadletter` Faust topic: keeps what is sent."""

    sent: list[tuple[bytes, bytes]] = field(default_factory=list)

    async def send(self, *, key: bytes, value: bytes) -> None:
        self.sent.append((key, value))


@dataclass
class Message:
    value: bytes
    key: bytes | None = b"acme/api"
    topic: str = "logs.raw"
    partition: int = 2
    offset: int = 41


@dataclass
class Event:
    message: Message


def _letter(original: bytes, reason: str = "unparseable", key: bytes | None = b"acme/api") -> Any:
    """The one letter DeadLetters sends for an ingest event of `original`, and its record size."""
    topic = SentTopic()
    letters = DeadLetters(cast(Any, topic), PipelineMetrics(CollectorRegistry()))
    event = cast(EventT[Any], Event(Message(original, key=key)))
    asyncio.run(letters("ingest", reason, event))
    [(stage, value)] = topic.sent
    return DeadLetter.from_bytes(value), record_bytes(value, stage)


def test_an_original_up_to_the_documented_size_is_carried_whole_even_with_worst_metadata() -> None:
    whole = largest_whole_original()
    original = bytes(range(256)) * (whole // 256) + b"\xff" * (whole % 256)
    worst_key = b"\x00" * (KEY_BYTES * 4)  # cut to KEY_BYTES; each byte is 6 bytes of JSON
    letter, size = _letter(original, reason="\x01" * 5000, key=worst_key)
    assert letter.original == original
    assert (letter.topic, letter.partition, letter.offset) == ("logs.raw", 2, 41)
    assert size <= MAX_MESSAGE_BYTES


def test_the_documented_size_is_close_to_the_most_that_fits() -> None:
    """Not an arbitrarily small bound: 3/4 of the limit, less a few kB of metadata."""
    assert largest_whole_original() > 3 * MAX_MESSAGE_BYTES // 4 - 16 * 1024
    assert largest_whole_original(1_000_000) < 750_000


@pytest.mark.parametrize("size", [MAX_MESSAGE_BYTES, 7 * MAX_MESSAGE_BYTES // 8])
def test_a_larger_original_is_cut_to_fit_and_says_so(size: int) -> None:
    """A raw message as large as the topic allows (another shipper's) is forwarded cut, not
    refused: the producer accepts the letter, the reason gives the original's size, and the
    letter names the topic, partition and offset where the whole message still is."""
    original = b"y" * size
    letter, sent = _letter(original)
    assert sent <= MAX_MESSAGE_BYTES
    assert letter.original == original[: len(letter.original)]
    assert len(letter.original) >= largest_whole_original()
    assert letter.reason == f"original of {size} bytes cut to fit a dead letter: unparseable"
    assert (letter.topic, letter.partition, letter.offset, letter.key) == (
        "logs.raw",
        2,
        41,
        "acme/api",
    )


def test_a_small_letter_is_unchanged() -> None:
    letter, _ = _letter(b"{oops")
    assert letter.original == b"{oops"
    assert letter.reason == "unparseable"
