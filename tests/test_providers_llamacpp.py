"""Providers and pool against real generation: the embedded llama.cpp server with SmolLM2.

The `openai` provider talks to llama.cpp directly; the `ollama` provider talks
to `OllamaAdapter`, an Ollama-API server that forwards to the same llama.cpp.
Small `max_tokens` keeps this quick on two shared cores.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import httpx
import orjson
import pytest
from ollama_adapter import OllamaAdapter
from pydantic import BaseModel, Field

from loglytics.providers import (
    ChatRequest,
    ChatResult,
    LLMPool,
    LocalLedger,
    OllamaProvider,
    OpenAIProvider,
    PoolResult,
    ProviderError,
    QuotaLedger,
    StreamDelta,
    json_schema_for,
    structured_output,
)
from loglytics.schemas import UsageRecord
from loglytics.settings import load_settings

MODEL = "smollm2-135m-instruct"


@structured_output
class Color(BaseModel):
    color: Annotated[str, Field(max_length=16)]
    warm: bool


ASK = [
    {"role": "system", "content": "Answer with JSON only."},
    {"role": "user", "content": "Pick a color and say whether it is warm."},
]


def chat(max_tokens: int = 48, schema: bool = True) -> ChatRequest:
    return ChatRequest(
        messages=ASK,
        max_tokens=max_tokens,
        temperature=0.0,
        seed=7,
        json_schema=json_schema_for(Color) if schema else None,
        schema_name="Color",
    )


@pytest.fixture
async def embedded(llamacpp_url: str) -> AsyncIterator[OpenAIProvider]:
    provider = OpenAIProvider(name="embedded", base_url=llamacpp_url, model=MODEL, timeout=60)
    yield provider
    await provider.aclose()


@pytest.fixture
async def adapter(llamacpp_url: str) -> AsyncIterator[OllamaAdapter]:
    server = OllamaAdapter(llamacpp_url, model="smollm2:135m", upstream_model=MODEL)
    await server.start()
    yield server
    await server.stop()


# ---------------------------------------------------------------- openai provider


async def test_openai_provider_schema_output_and_usage(embedded: OpenAIProvider) -> None:
    result = await embedded.complete(chat())
    assert result.provider == "embedded" and result.model == MODEL
    assert Color.model_validate_json(result.text)  # llama.cpp enforces the schema
    assert result.usage.prompt_tokens > 10 and result.usage.completion_tokens > 0
    assert not result.usage.estimated and result.finish_reason == "stop"


async def test_openai_provider_stream_concatenates(embedded: OpenAIProvider) -> None:
    events = [e async for e in embedded.stream(chat(max_tokens=16, schema=False))]
    final = events[-1]
    assert isinstance(final, ChatResult)
    deltas = [e.text for e in events[:-1] if isinstance(e, StreamDelta)]
    assert len(deltas) > 1 and "".join(deltas) == final.text
    assert 0 < final.usage.completion_tokens <= 16 and final.finish_reason in ("stop", "length")
    assert not final.usage.estimated  # from the include_usage chunk


async def test_openai_provider_health_and_models(embedded: OpenAIProvider) -> None:
    assert (await embedded.health()).ok
    assert await embedded.models() == [MODEL]


# ---------------------------------------------------------------- pool on llama.cpp


async def test_pool_structured_output_and_stream(llamacpp_url: str) -> None:
    records: list[UsageRecord] = []

    async def on_usage(record: UsageRecord) -> None:
        records.append(record)

    ledger = QuotaLedger({}, load_settings().tier_limits)
    settings = load_settings(llamacpp_base_url=llamacpp_url)
    pool = LLMPool.from_settings(settings, ledger=LocalLedger(ledger), on_usage=on_usage)
    try:
        result = await pool.complete(
            tenant="acme",
            tier="pro",
            task="analyze",
            messages=ASK,
            output=Color,
            max_tokens=48,
            request_id="r1",
        )
        assert isinstance(result.data, Color) and result.provider == "embedded"
        assert result.data_as(Color).color
        events = [
            e
            async for e in pool.stream(
                tenant="acme", tier="free", task="chat", messages=ASK[1:], max_tokens=24
            )
        ]
        final = events[-1]
        assert isinstance(final, PoolResult)
        assert "".join(e.text for e in events if isinstance(e, StreamDelta)) == final.text
        health = await pool.health()
        assert health["ok"] and health["providers"]["embedded"]["circuit"] == "closed"
        assert await pool.models() == {"embedded": [MODEL]}
    finally:
        await pool.stop()
    charged = result.usage.total + final.usage.total
    assert ledger.usage("acme") == {**ledger.usage("acme"), "tokens": charged, "calls": 2}
    assert [r.request_id for r in records] == ["r1", ""] and records[0].tier == "pro"
    assert records[0].prompt_tokens == result.usage.prompt_tokens > 0


# ---------------------------------------------------------------- ollama provider via the adapter


async def test_ollama_provider_complete_with_schema(adapter: OllamaAdapter) -> None:
    provider = OllamaProvider(base_url=adapter.base_url, model="smollm2:135m", num_ctx=2048)
    try:
        result = await provider.complete(chat())
        loaded = await provider.health()
        models = await provider.models()
    finally:
        await provider.aclose()
    assert Color.model_validate_json(result.text)
    assert result.provider == "ollama" and result.model == "smollm2:135m"
    assert result.usage.prompt_tokens > 10 and not result.usage.estimated
    sent = adapter.requests[-1]
    assert sent["format"] == json_schema_for(Color) and sent["stream"] is False
    assert sent["options"] == {"num_ctx": 2048, "num_predict": 48, "temperature": 0.0, "seed": 7}
    assert sent["keep_alive"] == "30m"
    assert loaded.ok and loaded.models == ["smollm2:135m"] and models == ["smollm2:135m"]


async def test_ollama_provider_stream_and_errors(adapter: OllamaAdapter) -> None:
    provider = OllamaProvider(base_url=adapter.base_url, model="smollm2:135m")
    missing = OllamaProvider(base_url=adapter.base_url, model="llama3.2:3b")
    try:
        events = [e async for e in provider.stream(chat(max_tokens=12, schema=False))]
        with pytest.raises(ProviderError) as info:
            await missing.complete(chat(max_tokens=4))
    finally:
        await provider.aclose()
        await missing.aclose()
    final = events[-1]
    assert isinstance(final, ChatResult) and final.finish_reason in ("stop", "length")
    assert "".join(e.text for e in events[:-1] if isinstance(e, StreamDelta)) == final.text
    assert 0 < final.usage.completion_tokens <= 12
    assert info.value.status == 404 and not info.value.retryable


async def test_adapter_speaks_ollama_wire_format(adapter: OllamaAdapter) -> None:
    async with httpx.AsyncClient(base_url=adapter.base_url, timeout=60) as client:
        body = {"model": "smollm2:135m", "messages": ASK[1:], "options": {"num_predict": 6}}
        async with client.stream("POST", "/api/chat", json=body) as response:  # streams by default
            assert response.headers["content-type"].startswith("application/x-ndjson")
            lines = [orjson.loads(line) async for line in response.aiter_lines() if line]
        assert all(not line["done"] for line in lines[:-1]) and lines[-1]["done"]
        assert lines[-1]["done_reason"] in ("stop", "length") and 0 < lines[-1]["eval_count"] <= 6
        assert lines[-1]["total_duration"] > 0 and lines[0]["message"]["role"] == "assistant"
        gen = await client.post("/api/generate", json={**body, "prompt": "Hi", "stream": False})
        assert gen.status_code == 200 and gen.json()["done"] and "response" in gen.json()
        assert (await client.get("/api/version")).json()["version"]
        show = await client.post("/api/show", json={"model": "smollm2:135m"})
        assert show.json()["details"]["format"] == "gguf"
        missing = await client.post("/api/show", json={"model": "nope"})
        assert missing.status_code == 404 and "not found" in missing.json()["error"]
        bad = await client.post("/api/chat", content=b"{")
        assert bad.status_code == 400 and "error" in bad.json()
        unload = await client.post("/api/chat", json={"model": "smollm2:135m", "keep_alive": 0})
        assert unload.json()["done_reason"] == "unload"
        assert (await client.get("/api/ps")).json() == {"models": []}


async def test_pool_free_tier_prefers_ollama_then_falls_back(
    adapter: OllamaAdapter, llamacpp_url: str
) -> None:
    good = load_settings(
        ollama_base_url=adapter.base_url,
        ollama_model="smollm2:135m",
        llamacpp_base_url=llamacpp_url,
    )
    wrong = load_settings(
        ollama_base_url=adapter.base_url,
        ollama_model="not-pulled:1b",
        llamacpp_base_url=llamacpp_url,
    )
    for settings, expected in ((good, "ollama"), (wrong, "embedded")):
        pool = LLMPool.from_settings(settings)
        try:
            result = await pool.complete(
                tenant="t", tier="free", task="analyze", messages=ASK, output=Color, max_tokens=48
            )
        finally:
            await pool.stop()
        assert result.provider == expected and isinstance(result.data, Color)
