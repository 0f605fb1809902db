"""`loglytics ask TASK`: one on-demand request over Kafka, its reply printed as it comes.

Streams print tokens as they arrive; structured replies print their data as
JSON; `--json` prints every reply record as one JSON line (for scripts).
Exit status: 0 answered, 1 error reply, 2 usage, 3 no reply in time.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from contextlib import aclosing
from pathlib import Path
from typing import Any

import orjson

from loglytics.clients import ReplyTimeout, ask_once, new_request_id
from loglytics.commands import broker
from loglytics.kafka_clients import KafkaConnection
from loglytics.schemas import DecodeError, LLMRequest, LLMResponse, LLMStreamChunk

TEXT_FIELD = {
    "chat": "message",
    "query": "question",
    "analyze": "text",
    "detect-errors": "text",
    "detect-anomalies": "text",
    "root-cause": "text",
}
DATA_TASKS = ("analyze", "detect-errors", "detect-anomalies", "root-cause")


class UsageError(ValueError):
    pass


def build_input(args: argparse.Namespace) -> dict[str, Any]:
    """The task input from --file (a JSON list of entries or an input object) and TEXT."""
    given: dict[str, Any] = {}
    if args.file:
        raw = sys.stdin.buffer.read() if args.file == "-" else Path(args.file).read_bytes()
        try:
            loaded = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise UsageError(f"{args.file}: not JSON ({exc})") from None
        if isinstance(loaded, list):
            given["entries"] = loaded
        elif isinstance(loaded, dict):
            given.update(loaded)
        else:
            raise UsageError(f"{args.file}: expected a list of entries or an input object")
    text = " ".join(args.text).strip()
    if text:
        field = TEXT_FIELD.get(args.task)
        if field is None:
            raise UsageError(f"{args.task} takes no text argument")
        given[field] = text
    if getattr(args, "finding_id", None):
        given["finding_id"] = args.finding_id
    if getattr(args, "last_hours", None):
        given["last_hours"] = args.last_hours
    return given


def _print_final(reply: LLMResponse, streamed: bool) -> int:
    if reply.error is not None:
        err = reply.error
        extra = (
            f" (retry after {err.retry_after:.0f}s, limit {err.limit})" if err.retry_after else ""
        )
        print(f"error: {err.error}: {err.message}{extra}", file=sys.stderr)
        return 1
    if streamed:
        print()
    elif reply.data is not None and reply.task in DATA_TASKS:
        print(orjson.dumps(reply.data, option=orjson.OPT_INDENT_2).decode())
    else:
        print(reply.text)
    usage = reply.tokens_used
    flags = "".join([", truncated" if reply.truncated else "", ", cached" if reply.cached else ""])
    meta = f"[{reply.model_used or 'no model'}, {usage.total} tokens, {reply.latency_ms:.0f} ms"
    print(meta + flags + "]", file=sys.stderr)
    return 0


async def ask(kafka: KafkaConnection, request: LLMRequest, timeout: float, as_json: bool) -> int:
    streamed = False
    async with aclosing(ask_once(kafka, request, timeout)) as replies:
        async for reply in replies:
            if as_json:
                sys.stdout.write(reply.to_bytes().decode() + "\n")
                sys.stdout.flush()
                if isinstance(reply, LLMResponse):
                    return 0 if reply.ok else 1
                continue
            if isinstance(reply, LLMStreamChunk):
                streamed = True
                sys.stdout.write(reply.delta)
                sys.stdout.flush()
            else:
                return _print_final(reply, streamed)
    return 3


def run(args: argparse.Namespace) -> int:
    kafka = broker()
    if kafka is None:
        return 2
    try:
        obj: dict[str, Any] = {
            "request_id": new_request_id(),
            "tenant": args.tenant,
            "api_key": args.api_key,
            "task": args.task,
            "input": build_input(args),
            "stream": bool(args.stream),
        }
        if getattr(args, "max_tokens", None) is not None:
            obj["max_tokens"] = args.max_tokens
        if getattr(args, "temperature", None) is not None:
            obj["temperature"] = args.temperature
        request = LLMRequest.from_obj(obj)
    except (UsageError, DecodeError, OSError) as exc:
        print(f"loglytics ask: {exc}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(ask(kafka, request, args.timeout, bool(args.json)))
    except ReplyTimeout as exc:
        print(f"loglytics ask: {exc}", file=sys.stderr)
        return 3
