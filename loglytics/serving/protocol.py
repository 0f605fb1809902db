"""The request topic's protocol: decoding a request, its deadline, and a new group's start.

A request that cannot be decoded is still answered when its request id can
be salvaged (the caller is waiting on it); bytes with no usable id cannot be
answered and become a dead letter.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

import orjson
from aiokafka import TopicPartition
from faust.types import EventT

from loglytics.clients import DEADLINE_HEADER
from loglytics.kafka_clients import KafkaConnection
from loglytics.schemas import DecodeError, LLMRequest
from loglytics.topics import REQUESTS

log = logging.getLogger(__name__)

REQUEST_TTL_SECONDS = 300.0
_REQUEST_ID = re.compile(rb'"request_id"\s*:\s*"([A-Za-z0-9_.:-]{1,128})"')


class BadRequest(Exception):
    """Bytes that are not a valid `LLMRequest`; `request_id` is set if one could be found."""

    def __init__(self, reason: str, request_id: str | None, tenant: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.request_id = request_id
        self.tenant = tenant


def parse_request(value: bytes) -> LLMRequest:
    """Decode a request, or raise `BadRequest` with whatever id and tenant can be salvaged."""
    try:
        obj = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        found = _REQUEST_ID.search(value)
        rid = found.group(1).decode() if found else None
        raise BadRequest(f"invalid JSON: {exc}", rid, "") from None
    try:
        return LLMRequest.from_obj(obj)
    except DecodeError as exc:
        rid = obj.get("request_id") if isinstance(obj, dict) else None
        tenant = obj.get("tenant") if isinstance(obj, dict) else None
        usable = isinstance(rid, str) and 0 < len(rid) <= 128
        return_tenant = tenant if isinstance(tenant, str) and len(tenant) <= 64 else ""
        raise BadRequest(exc.reason, rid if usable else None, return_tenant) from None


async def fresh_group(kafka: KafkaConnection, group_id: str) -> bool:
    """True when the consumer group has no committed offset on `llm.requests`."""
    consumer = kafka.consumer(group_id=group_id, enable_auto_commit=False)
    try:
        await consumer.start()
        await consumer.topics()
        parts = consumer.partitions_for_topic(REQUESTS.name) or set()
        for part in parts:
            if await consumer.committed(TopicPartition(REQUESTS.name, part)) is not None:
                return False
        return bool(parts)
    except Exception:  # cannot tell: serve everything within its deadline
        log.warning("could not read committed offsets of llm.requests", exc_info=True)
        return False
    finally:
        await consumer.stop()


def deadline_of(event: EventT[Any]) -> float:
    """The client's deadline header, else production time plus the default TTL."""
    headers: Any = event.message.headers or ()
    items = headers.items() if isinstance(headers, dict) else headers
    for name, raw in items:
        if name == DEADLINE_HEADER:
            try:
                return float(raw.decode() if isinstance(raw, bytes) else raw)
            except (ValueError, AttributeError):
                break
    produced = event.message.timestamp or time.time()
    return float(produced) + REQUEST_TTL_SECONDS
