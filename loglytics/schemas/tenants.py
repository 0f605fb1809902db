"""Tenants: the compacted `tenants` topic is their source of truth."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Literal

from pydantic import Field

from loglytics.schemas.base import EpochSeconds, Record


class TenantRecord(Record):
    tenant: str = Field(min_length=1, max_length=64)
    tier: Literal["free", "pro"] = "free"
    api_key_hashes: list[str] = Field(default_factory=list)
    enabled: bool = True
    updated_at: EpochSeconds = 0.0

    def accepts(self, api_key: str) -> bool:
        digest = hash_api_key(api_key)
        return self.enabled and any(hmac.compare_digest(digest, h) for h in self.api_key_hashes)


def new_api_key() -> str:
    return "llk_" + secrets.token_urlsafe(24)


def hash_api_key(api_key: str) -> str:
    """SHA-256 is enough: keys are 192-bit random, so no slow hash is needed."""
    return hashlib.sha256(api_key.encode()).hexdigest()
