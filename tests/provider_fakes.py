"""Scripted fakes of an OpenAI-compatible server, and a pool over them, for the fault tests.

Each fake speaks the OpenAI chat API (what vLLM and llama.cpp speak) and
follows a script: answer, answer late, answer 500, answer garbage. A closed
port stands for a provider that is down.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Annotated, Any

import orjson
from aiohttp import web
from pydantic import BaseModel, Field

from loglytics.embedded.ports import free_port
from loglytics.providers import LLMPool, LocalLedger, OpenAIProvider, QuotaLedger, RetryPolicy
from loglytics.schemas import UsageRecord

OK_JSON = '{"verdict": "ok", "score": 3}'
MSGS = [{"role": "user", "content": "hello"}]


class Verdict(BaseModel):
    verdict: Annotated[str, Field(max_length=20)]
    score: int = Field(ge=0, le=10)


@dataclass
class Step:
    """One scripted reply: HTTP status, body text, delay before answering, usage to report."""

    status: int = 200
    content: str = OK_JSON
    delay: float = 0.0
    usage: dict[str, int] | None = field(
        default_factory=lambda: {"prompt_tokens": 8, "completion_tokens": 6}
    )
    finish: str = "stop"


class FakeOpenAI:
    """An OpenAI-compatible server on a free loopback port that follows a script.

    Request n gets `script[min(n, len(script) - 1)]`; `hits` counts chat requests.
    """

    def __init__(self, *script: Step, name: str = "fake") -> None:
        self.script = list(script) or [Step()]
        self.name = name
        self.hits = 0
        self.bodies: list[dict[str, Any]] = []
        self.healthy = True
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def __aenter__(self) -> FakeOpenAI:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/health", self._health)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, shutdown_timeout=0.1)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    def provider(self, *, parallel: int = 4, timeout: float = 5.0) -> OpenAIProvider:
        return OpenAIProvider(
            name=self.name,
            base_url=self.url,
            model=f"{self.name}-model",
            max_parallel=parallel,
            timeout=timeout,
        )

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"status": "ok" if self.healthy else "down"}, status=200 if self.healthy else 503
        )

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": f"{self.name}-model"}]})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        step = self.script[min(self.hits, len(self.script) - 1)]
        self.hits += 1
        self.bodies.append(body)
        if step.delay:
            await asyncio.sleep(step.delay)
        if step.status != 200:
            return web.json_response(
                {"error": {"message": f"scripted {step.status}"}}, status=step.status
            )
        model = f"{self.name}-model"
        if not body.get("stream"):
            payload: dict[str, Any] = {
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": step.content},
                        "finish_reason": step.finish,
                    }
                ],
            }
            if step.usage is not None:
                payload["usage"] = step.usage
            return web.json_response(payload)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        pieces = [step.content[i : i + 5] for i in range(0, len(step.content), 5)]
        for piece in pieces:
            chunk = {
                "model": model,
                "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}],
            }
            await response.write(b"data: " + orjson.dumps(chunk) + b"\n\n")
        done = {
            "model": model,
            "choices": [{"index": 0, "delta": {}, "finish_reason": step.finish}],
        }
        await response.write(b"data: " + orjson.dumps(done) + b"\n\n")
        if step.usage is not None:
            usage = {"model": model, "choices": [], "usage": step.usage}
            await response.write(b"data: " + orjson.dumps(usage) + b"\n\n")
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response


def dead_provider(name: str = "dead") -> OpenAIProvider:
    """A provider whose port nobody listens on."""
    return OpenAIProvider(
        name=name, base_url=f"http://127.0.0.1:{free_port()}", model="m", timeout=2.0
    )


def make_pool(
    *providers: OpenAIProvider,
    ledger: QuotaLedger | None = None,
    records: list[UsageRecord] | None = None,
    **options: Any,
) -> LLMPool:
    async def on_usage(record: UsageRecord) -> None:
        if records is not None:
            records.append(record)

    options.setdefault("timeout", 2.0)
    options.setdefault("retry", RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05))
    options.setdefault("cache_size", 0)
    return LLMPool(
        {"free": list(providers), "pro": list(providers)},
        ledger=LocalLedger(ledger) if ledger is not None else None,
        on_usage=on_usage,
        **options,
    )
