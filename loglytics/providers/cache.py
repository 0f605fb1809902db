"""A bounded LRU + TTL cache of finished replies, keyed by everything that shapes them.

Why: dashboards and retries re-ask identical questions; answering from memory
costs the tenant nothing and frees a slot. The key includes the tenant, so a
cached reply never crosses tenants (a hit would reveal another tenant's
question), and the model chain, schema and sampling settings, so a reply is
only reused where the same call would be made.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import orjson

V = TypeVar("V")


def cache_key(**parts: Any) -> str:
    """A stable digest of the parts (dict order does not matter)."""
    raw = orjson.dumps(parts, option=orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(raw, digest_size=20).hexdigest()


class TTLCache(Generic[V]):
    """LRU eviction at `maxsize`, expiry after `ttl` seconds; `maxsize=0` or `ttl=0` disables."""

    def __init__(
        self, maxsize: int, ttl: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.maxsize = maxsize
        self.ttl = ttl
        self._clock = clock
        self._items: OrderedDict[str, tuple[float, V]] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.maxsize > 0 and self.ttl > 0

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: str) -> V | None:
        item = self._items.get(key)
        if item is None:
            return None
        expires, value = item
        if self._clock() >= expires:
            del self._items[key]
            return None
        self._items.move_to_end(key)
        return value

    def put(self, key: str, value: V) -> None:
        if not self.enabled:
            return
        self._items[key] = (self._clock() + self.ttl, value)
        self._items.move_to_end(key)
        while len(self._items) > self.maxsize:
            self._items.popitem(last=False)

    def clear(self) -> None:
        self._items.clear()
