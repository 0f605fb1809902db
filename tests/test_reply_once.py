"""Unit: a caller keeps the first final reply per request id and drops later ones.

A request is served at least once, so a worker that takes over a partition may
answer a request again (a replay after a crash or a rebalance). The client (and
the gateway, which waits on the same client) must hand the caller one final
reply and each stream chunk once, and keep serving other requests. No broker:
the producer is a stand-in that delivers scripted replies through the client's
own routing, as its dispatcher would.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from loglytics.clients import Reply, ReplyTimeout, RequestClient
from loglytics.kafka_clients import KafkaConnection
from loglytics.schemas import LLMResponse, LLMStreamChunk


def answer(request_id: str, text: str) -> LLMResponse:
    return LLMResponse(request_id=request_id, tenant="acme", task="chat", text=text)


def chunk(request_id: str, seq: int, delta: str) -> LLMStreamChunk:
    return LLMStreamChunk(request_id=request_id, seq=seq, delta=delta)


class ScriptedProducer:
    """Stands in for the producer: on each send, the replies `script` names for that request
    id reach the client's router, as the dispatcher would pass them on from `llm.responses`."""

    def __init__(self, client: RequestClient, script: Callable[[str], list[Reply]]) -> None:
        self.client = client
        self.script = script

    async def send_and_wait(
        self, topic: str, *, value: bytes, key: Any, headers: Any, partition: Any
    ) -> None:
        request_id = value.decode()
        for reply in self.script(request_id):
            self.client._route(request_id.encode(), reply.to_bytes())


def scripted_client(script: Callable[[str], list[Reply]]) -> RequestClient:
    client = RequestClient(KafkaConnection("127.0.0.1:1"))
    client._producer = ScriptedProducer(client, script)
    return client


async def replies_of(client: RequestClient, request_id: str) -> list[Reply]:
    return [r async for r in client.stream_raw(request_id, None, request_id.encode(), 5.0)]


def test_a_second_final_reply_is_dropped_and_the_client_goes_on() -> None:
    def script(rid: str) -> list[Reply]:
        return [answer(rid, "first"), answer(rid, "replayed"), answer(rid, "third")]

    async def run() -> tuple[list[Reply], list[Reply], RequestClient]:
        client = scripted_client(script)
        first = await replies_of(client, "r1")
        # The late replay of r1 after its caller is gone: nobody waits, nothing breaks.
        client._route(b"r1", answer("r1", "much later").to_bytes())
        again = await replies_of(client, "r2")
        return first, again, client

    first, again, client = asyncio.run(run())
    assert [r.text for r in first if isinstance(r, LLMResponse)] == ["first"]
    assert len(first) == 1
    assert [r.text for r in again if isinstance(r, LLMResponse)] == ["first"]
    assert client.duplicates == 4  # two repeats of r1 while it waited, two of r2
    assert client._waiters == {}


def test_a_replayed_stream_repeats_no_chunk_and_ends_at_the_first_final() -> None:
    def script(rid: str) -> list[Reply]:
        died = [chunk(rid, 0, "Hel"), chunk(rid, 1, "lo")]  # the first worker died here
        replay = [chunk(rid, 0, "Hel"), chunk(rid, 1, "lo"), chunk(rid, 2, " there")]
        return [*died, *replay, answer(rid, "Hello there"), chunk(rid, 0, "Hel")]

    async def run() -> tuple[list[Reply], int]:
        client = scripted_client(script)
        return await replies_of(client, "s1"), client.duplicates

    replies, duplicates = asyncio.run(run())
    chunks = [r for r in replies if isinstance(r, LLMStreamChunk)]
    assert [c.seq for c in chunks] == [0, 1, 2]
    assert "".join(c.delta for c in chunks) == "Hello there"
    assert isinstance(replies[-1], LLMResponse) and replies[-1].text == "Hello there"
    assert duplicates == 3


def test_a_caller_that_gets_no_final_reply_still_times_out() -> None:
    """Dropping repeats must not swallow the one final reply: without it, the wait ends."""

    async def run() -> None:
        client = scripted_client(lambda rid: [chunk(rid, 0, "x"), chunk(rid, 0, "x")])
        async for _ in client.stream_raw("t1", None, b"t1", 0.3):
            pass

    with pytest.raises(ReplyTimeout):
        asyncio.run(run())
