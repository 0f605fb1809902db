"""The base of every message model: strict pydantic v2 with orjson bytes codecs.

Why strict: a wrong type on a topic is a producer bug that must be dead-lettered
with a reason, not silently coerced into a plausible-looking value.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Self

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

SCHEMA_VERSION = 1

# The times ClickHouse's DateTime64 holds, which every stored time becomes.
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(2299, 12, 31, tzinfo=UTC)

EpochSeconds = Annotated[float, Field(ge=EARLIEST.timestamp(), le=LATEST.timestamp())]
"""Seconds since 1970 (UTC) that ClickHouse can store.

Why bounded at decode: a time outside DateTime64's range cannot become a row
(Python's datetime stops at year 9999, the server at 2299), so a record carrying
one would fail in the sink, far from the producer; refused here, it is
dead-lettered with the field named.
"""


class DecodeError(ValueError):
    """A message could not be decoded into its model; `reason` says why, briefly."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Record(BaseModel):
    """A versioned message. Unknown fields are rejected, types are not coerced."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=False)

    schema_version: int = SCHEMA_VERSION

    def to_bytes(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json", exclude_none=False))

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview | str) -> Self:
        """Decode or raise `DecodeError` with a one-line reason (never anything else)."""
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise DecodeError(f"invalid JSON: {exc}") from None
        return cls.from_obj(obj)

    @classmethod
    def from_obj(cls, obj: object) -> Self:
        if not isinstance(obj, dict):
            raise DecodeError(f"expected a JSON object, got {type(obj).__name__}")
        version = obj.get("schema_version", SCHEMA_VERSION)
        if version != SCHEMA_VERSION:
            raise DecodeError(f"unsupported schema_version {version!r}")
        try:
            return cls.model_validate(obj)
        except ValidationError as exc:
            raise DecodeError(_summarise(exc)) from None


def _summarise(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        loc = ".".join(str(p) for p in err["loc"]) or "<root>"
        parts.append(f"{loc}: {err['msg']}")
    more = exc.error_count() - len(parts)
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")
