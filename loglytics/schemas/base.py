"""The base of every message model: strict pydantic v2 with orjson bytes codecs.

Why strict: a wrong type on a topic is a producer bug that must be dead-lettered
with a reason, not silently coerced into a plausible-looking value.
"""

from __future__ import annotations

from typing import Any, Self

import orjson
from pydantic import BaseModel, ConfigDict, ValidationError

SCHEMA_VERSION = 1


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
