"""Dead letters: the original bytes plus where and why they failed, so nothing is lost."""

from __future__ import annotations

import base64
import time

from loglytics.schemas.base import EpochSeconds, Record


class DeadLetter(Record):
    stage: str
    reason: str
    topic: str = ""
    partition: int = -1
    offset: int = -1
    key: str | None = None
    original_b64: str = ""
    ts: EpochSeconds = 0.0

    @property
    def original(self) -> bytes:
        return base64.b64decode(self.original_b64)

    @classmethod
    def of(
        cls,
        stage: str,
        reason: str,
        original: bytes | str | None,
        *,
        topic: str = "",
        partition: int = -1,
        offset: int = -1,
        key: bytes | str | None = None,
    ) -> DeadLetter:
        raw = original.encode("utf-8", "surrogateescape") if isinstance(original, str) else original
        k = key.decode("utf-8", "replace") if isinstance(key, bytes) else key
        return cls(
            stage=stage,
            reason=reason[:1000],
            topic=topic,
            partition=partition,
            offset=offset,
            key=k,
            original_b64=base64.b64encode(raw or b"").decode(),
            ts=time.time(),
        )
