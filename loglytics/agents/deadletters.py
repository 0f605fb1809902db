"""Dead-lettering: the one way an agent gives up on a message, without losing it."""

from __future__ import annotations

import logging
from typing import Any

from faust.types import EventT

from loglytics.schemas import DeadLetter
from loglytics.topics import deadletter_topic

log = logging.getLogger(__name__)


async def dead_letter(
    stage: str, reason: str, event: EventT[Any] | None, original: bytes | None = None
) -> None:
    """Send the original bytes with the stage and reason to `deadletter`."""
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
    await deadletter_topic.send(key=stage.encode(), value=letter.to_bytes())
