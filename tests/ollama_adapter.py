"""A test server that speaks Ollama's native API and forwards to an OpenAI-compatible one.

Why: the `ollama` provider must be tested against real generation without an
Ollama install. This adapter implements the parts of Ollama's documented API
the product uses, with Ollama's shapes, defaults and error bodies:

- `POST /api/chat`  (streaming NDJSON by default, or one JSON object with `"stream": false`;
  `format` ("json" or a JSON schema) → `response_format`; `options` num_predict,
  temperature, seed, top_p, top_k, stop, num_ctx; `keep_alive`; empty `messages` loads
  the model, `keep_alive: 0` unloads it; final object has done, done_reason,
  prompt_eval_count, eval_count and nanosecond durations)
- `POST /api/generate` (prompt/system; same streaming and options; `response` field)
- `GET /api/tags`, `POST /api/show`, `GET /api/ps`, `GET /api/version`
- errors as `{"error": "..."}` with Ollama's status codes (400 bad request, 404 unknown
  model, 500 upstream failure); mid-stream failures as a final `{"error": ...}` line.

Use: `async with OllamaAdapter(upstream_url) as base_url: ...` (binds 127.0.0.1 on a free port).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import time
from typing import Any

import httpx
import orjson
from aiohttp import web

OLLAMA_VERSION = "0.6.3"
DEFAULT_KEEP_ALIVE = 300.0  # Ollama keeps a model loaded 5 minutes by default
_ROLES = {"system", "user", "assistant", "tool"}
_DURATION = re.compile(r"^(-?\d+(?:\.\d+)?)(ns|us|ms|s|m|h)?$")
_UNITS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


class BadRequest(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")


def _error(message: str, status: int) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _keep_alive_seconds(value: Any) -> float:
    """Ollama accepts seconds as a number or a Go duration string ("5m", "1h", "-1")."""
    if value is None:
        return DEFAULT_KEEP_ALIVE
    if isinstance(value, bool):
        raise BadRequest("invalid keep_alive")
    if isinstance(value, int | float):
        return float(value)
    match = _DURATION.match(str(value).strip())
    if not match:
        raise BadRequest(f"time: invalid duration {value!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


class OllamaAdapter:
    """Ollama API on 127.0.0.1, backed by an OpenAI-compatible server (llama.cpp)."""

    def __init__(
        self,
        upstream: str,
        *,
        model: str = "smollm2:135m",
        upstream_model: str = "smollm2-135m-instruct",
        context_length: int = 4096,
    ) -> None:
        self.upstream = upstream.rstrip("/")
        self.model = self._full_name(model)
        self.upstream_model = upstream_model
        self.context_length = context_length
        self.requests: list[dict[str, Any]] = []  # bodies of chat/generate calls, for assertions
        self._loaded: dict[str, float] = {}  # model -> expires_at (epoch seconds)
        self._digest = hashlib.sha256(self.model.encode()).hexdigest()
        self._client: httpx.AsyncClient | None = None
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> str:
        self._client = httpx.AsyncClient(base_url=self.upstream, timeout=60.0)
        app = web.Application()
        app.router.add_post("/api/chat", self._chat)
        app.router.add_post("/api/generate", self._generate)
        app.router.add_get("/api/tags", self._tags)
        app.router.add_post("/api/show", self._show)
        app.router.add_get("/api/ps", self._ps)
        app.router.add_get("/api/version", self._version)
        app.router.add_get("/", self._root)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.base_url = f"http://{host}:{port}"
        return self.base_url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def __aenter__(self) -> str:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ---------------------------------------------------------------- helpers

    @staticmethod
    def _full_name(name: str) -> str:
        """Ollama names are model:tag; a missing tag means ":latest"."""
        return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"

    def _check_model(self, body: dict[str, Any]) -> str:
        name = body.get("model") or body.get("name")
        if not name or not isinstance(name, str):
            raise BadRequest("model is required")
        if self._full_name(name) != self.model:
            raise BadRequest(f'model "{name}" not found, try pulling it first', status=404)
        return name

    @staticmethod
    async def _json_body(request: web.Request) -> dict[str, Any]:
        raw = await request.read()
        if not raw:
            raise BadRequest("missing request body")
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise BadRequest(f"invalid character in request body: {exc}") from None
        if not isinstance(body, dict):
            raise BadRequest("request body must be a JSON object")
        return body

    def _details(self) -> dict[str, Any]:
        return {
            "parent_model": "",
            "format": "gguf",
            "family": "llama",
            "families": ["llama"],
            "parameter_size": "135M",
            "quantization_level": "Q4_1",
        }

    def _upstream_body(
        self, messages: list[dict[str, str]], body: dict[str, Any], stream: bool
    ) -> dict[str, Any]:
        options = body.get("options") or {}
        if not isinstance(options, dict):
            raise BadRequest("options must be an object")
        out: dict[str, Any] = {
            "model": self.upstream_model,
            "messages": messages,
            "stream": stream,
        }
        num_predict = options.get("num_predict")
        if num_predict is not None:
            if not isinstance(num_predict, int):
                raise BadRequest("option num_predict must be an integer")
            if num_predict >= 0:  # -1 = unlimited, -2 = fill the context
                out["max_tokens"] = num_predict
        for key in ("temperature", "seed", "top_p", "top_k", "stop"):
            if key in options:
                out[key] = options[key]
        num_ctx = options.get("num_ctx")
        if num_ctx is not None and (not isinstance(num_ctx, int) or num_ctx <= 0):
            raise BadRequest("option num_ctx must be a positive integer")
        fmt = body.get("format")
        if fmt == "json":
            out["response_format"] = {"type": "json_object"}
        elif isinstance(fmt, dict):
            out["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "format", "schema": fmt, "strict": True},
            }
        elif fmt not in (None, ""):
            raise BadRequest(f"invalid format: {fmt!r}")
        if stream:
            out["stream_options"] = {"include_usage": True}
        return out

    def _mark_loaded(self, body: dict[str, Any]) -> float:
        keep = _keep_alive_seconds(body.get("keep_alive"))
        if keep == 0:
            self._loaded.pop(self.model, None)
        else:
            self._loaded[self.model] = time.time() + (keep if keep > 0 else 10 * 365 * 86400)
        return keep

    def _final(
        self,
        key: str,
        content: str,
        finish: str,
        usage: dict[str, Any],
        timings: dict[str, Any],
        started: float,
    ) -> dict[str, Any]:
        prompt_ms = float(timings.get("prompt_ms") or 0.0)
        eval_ms = float(timings.get("predicted_ms") or 0.0)
        final: dict[str, Any] = {
            "model": self.model,
            "created_at": _now_iso(),
            key: {"role": "assistant", "content": content} if key == "message" else content,
            "done": True,
            "done_reason": "length" if finish == "length" else "stop",
            "total_duration": int((time.perf_counter() - started) * 1e9),
            "load_duration": 0,
            "prompt_eval_count": int(usage.get("prompt_tokens", 0)),
            "prompt_eval_duration": int(prompt_ms * 1e6),
            "eval_count": int(usage.get("completion_tokens", 0)),
            "eval_duration": int(eval_ms * 1e6),
        }
        return final

    # ---------------------------------------------------------------- endpoints

    async def _root(self, request: web.Request) -> web.Response:
        return web.Response(text="Ollama is running")

    async def _version(self, request: web.Request) -> web.Response:
        return web.json_response({"version": OLLAMA_VERSION})

    async def _tags(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "models": [
                    {
                        "name": self.model,
                        "model": self.model,
                        "modified_at": _now_iso(),
                        "size": 96_576_768,
                        "digest": self._digest,
                        "details": self._details(),
                    }
                ]
            }
        )

    async def _ps(self, request: web.Request) -> web.Response:
        now = time.time()
        models = []
        for name, expires in list(self._loaded.items()):
            if expires <= now:
                del self._loaded[name]
                continue
            models.append(
                {
                    "name": name,
                    "model": name,
                    "size": 96_576_768,
                    "digest": self._digest,
                    "details": self._details(),
                    "expires_at": dt.datetime.fromtimestamp(expires, dt.UTC).isoformat(),
                    "size_vram": 0,
                    "context_length": self.context_length,
                }
            )
        return web.json_response({"models": models})

    async def _show(self, request: web.Request) -> web.Response:
        try:
            body = await self._json_body(request)
            self._check_model(body)
        except BadRequest as exc:
            return _error(str(exc), exc.status)
        return web.json_response(
            {
                "modelfile": f"FROM {self.upstream_model}\n",
                "parameters": 'stop "<|im_end|>"',
                "template": "{{ .Prompt }}",
                "details": self._details(),
                "model_info": {
                    "general.architecture": "llama",
                    "general.parameter_count": 134_515_008,
                    "llama.context_length": self.context_length,
                },
                "capabilities": ["completion"],
                "modified_at": _now_iso(),
            }
        )

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await self._json_body(request)
            self._check_model(body)
            messages = body.get("messages")
            if messages is None:
                messages = []
            if not isinstance(messages, list):
                raise BadRequest("messages must be a list")
            clean: list[dict[str, str]] = []
            for m in messages:
                if not isinstance(m, dict) or m.get("role") not in _ROLES:
                    raise BadRequest(f"invalid message: {str(m)[:80]}")
                clean.append({"role": m["role"], "content": str(m.get("content") or "")})
            keep = self._mark_loaded(body)
        except BadRequest as exc:
            return _error(str(exc), exc.status)
        self.requests.append(body)
        if not clean:  # Ollama: an empty chat loads (or with keep_alive 0 unloads) the model
            return web.json_response(
                {
                    "model": self.model,
                    "created_at": _now_iso(),
                    "message": {"role": "assistant", "content": ""},
                    "done_reason": "unload" if keep == 0 else "load",
                    "done": True,
                }
            )
        return await self._run(request, body, clean, key="message")

    async def _generate(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await self._json_body(request)
            self._check_model(body)
            prompt = body.get("prompt") or ""
            if not isinstance(prompt, str):
                raise BadRequest("prompt must be a string")
            keep = self._mark_loaded(body)
        except BadRequest as exc:
            return _error(str(exc), exc.status)
        self.requests.append(body)
        if not prompt:
            return web.json_response(
                {
                    "model": self.model,
                    "created_at": _now_iso(),
                    "response": "",
                    "done": True,
                    "done_reason": "unload" if keep == 0 else "load",
                }
            )
        messages = []
        if body.get("system"):
            messages.append({"role": "system", "content": str(body["system"])})
        messages.append({"role": "user", "content": prompt})
        return await self._run(request, body, messages, key="response")

    async def _run(
        self,
        request: web.Request,
        body: dict[str, Any],
        messages: list[dict[str, str]],
        *,
        key: str,
    ) -> web.StreamResponse:
        stream = body.get("stream", True) is not False  # Ollama streams unless told not to
        try:
            upstream = self._upstream_body(messages, body, stream)
        except BadRequest as exc:
            return _error(str(exc), exc.status)
        started = time.perf_counter()
        if not stream:
            return await self._whole(upstream, key, started)
        return await self._streamed(request, upstream, key, started)

    async def _whole(self, upstream: dict[str, Any], key: str, started: float) -> web.Response:
        assert self._client is not None
        try:
            reply = await self._client.post("/v1/chat/completions", json=upstream)
        except httpx.HTTPError as exc:
            return _error(f"llama runner process has terminated: {exc}", 500)
        if reply.status_code != 200:
            status = 400 if 400 <= reply.status_code < 500 else 500
            return _error(reply.text[:300], status)
        payload = reply.json()
        choice = payload["choices"][0]
        return web.json_response(
            self._final(
                key,
                choice["message"].get("content") or "",
                choice.get("finish_reason") or "stop",
                payload.get("usage") or {},
                payload.get("timings") or {},
                started,
            )
        )

    async def _streamed(
        self, request: web.Request, upstream: dict[str, Any], key: str, started: float
    ) -> web.StreamResponse:
        assert self._client is not None
        response = web.StreamResponse(status=200, headers={"Content-Type": "application/x-ndjson"})
        finish = "stop"
        usage: dict[str, Any] = {}
        timings: dict[str, Any] = {}
        try:
            async with self._client.stream("POST", "/v1/chat/completions", json=upstream) as reply:
                if reply.status_code != 200:
                    text = (await reply.aread()).decode(errors="replace")[:300]
                    return _error(text, 400 if 400 <= reply.status_code < 500 else 500)
                await response.prepare(request)
                async for line in reply.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    chunk = orjson.loads(data)
                    usage = chunk.get("usage") or usage
                    timings = chunk.get("timings") or timings
                    for choice in chunk.get("choices") or ():
                        delta = (choice.get("delta") or {}).get("content")
                        if choice.get("finish_reason"):
                            finish = choice["finish_reason"]
                        if delta:
                            part = {
                                "model": self.model,
                                "created_at": _now_iso(),
                                key: {"role": "assistant", "content": delta}
                                if key == "message"
                                else delta,
                                "done": False,
                            }
                            await response.write(orjson.dumps(part) + b"\n")
        except (httpx.HTTPError, orjson.JSONDecodeError) as exc:
            if not response.prepared:
                return _error(f"llama runner process has terminated: {exc}", 500)
            await response.write(orjson.dumps({"error": f"upstream failed: {exc}"}) + b"\n")
            await response.write_eof()
            return response
        final = self._final(key, "", finish, usage, timings, started)
        await response.write(orjson.dumps(final) + b"\n")
        await response.write_eof()
        return response
