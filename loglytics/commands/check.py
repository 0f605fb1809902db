"""`loglytics check [BASE_URL] --api-key KEY`: every route of a running HTTP API, as a table.

The product brief's test script as a command: health, models, chat, the chat
stream, every analysis task, query, summarize, users/me and a rate-limit
probe (two reads of users/me: the window must count the request between
them). Each check passes when its reply has the brief's fields; exit status 1
when any fails. Model calls are kept short (`max_tokens`), since a small model
on a busy host takes seconds per call.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from loglytics.settings import get_settings

ANALYSIS_FIELDS = ("analysis", "model_used", "tokens_used", "latency_ms", "metadata")
CHAT_FIELDS = ("message", "model_used", "tokens_used", "latency_ms", "metadata")
ENTRIES = [
    {"level": "ERROR", "message": "Connection refused to db:5432", "source": "api"},
    {"level": "ERROR", "message": "Connection refused to db:5432", "source": "api"},
    {"level": "WARN", "message": "Retrying in 30s", "source": "api"},
]
ANALYSIS = {"log_entries": ENTRIES, "max_tokens": 144}


@dataclass(frozen=True)
class Outcome:
    name: str
    passed: bool
    status: int | None
    seconds: float
    detail: str


def has_fields(*fields: str) -> Callable[[httpx.Response], str]:
    """A check: status 200 and every field in the JSON body; '' when it passes."""

    def check(resp: httpx.Response) -> str:
        if resp.status_code != 200:
            return resp.text[:120]
        missing = [f for f in fields if f not in resp.json()]
        return f"missing {', '.join(missing)}" if missing else ""

    return check


def stream_check(resp: httpx.Response) -> str:
    lines = [orjson.loads(line) for line in resp.text.splitlines() if line.strip()]
    if resp.status_code != 200 or not lines:
        return resp.text[:120]
    last = lines[-1]
    if last.get("kind") != "response":
        return f"ended with {str(last)[:100]}"
    chunks = "".join(line.get("delta", "") for line in lines[:-1])
    return "" if chunks == last.get("message") else "chunks do not add up to the message"


def plan() -> list[tuple[str, str, str, dict[str, Any] | None, Callable[[httpx.Response], str]]]:
    """(name, method, path, body, check) for every step but the rate probe."""
    llm = "/api/v1/llm"
    hi = {"message": "Say hi.", "max_tokens": 24}
    analysis = has_fields(*ANALYSIS_FIELDS)
    me = has_fields("tenant", "tier", "tokens_this_month", "api_calls_today", "rate_limit")
    return [
        ("health", "GET", f"{llm}/health", None, has_fields("ok", "providers", "clickhouse")),
        ("models", "GET", f"{llm}/models", None, has_fields("tier", "chain", "providers")),
        ("chat", "POST", f"{llm}/chat", hi, has_fields(*CHAT_FIELDS)),
        ("chat stream", "POST", f"{llm}/chat/stream", hi, stream_check),
        ("analyze", "POST", f"{llm}/analyze", ANALYSIS, analysis),
        ("detect-errors", "POST", f"{llm}/detect-errors", ANALYSIS, analysis),
        ("root-cause", "POST", f"{llm}/root-cause", ANALYSIS, analysis),
        ("detect-anomalies", "POST", f"{llm}/detect-anomalies", ANALYSIS, analysis),
        (
            "query",
            "POST",
            f"{llm}/query",
            {"question": "How many findings per severity?"},
            analysis,
        ),
        ("summarize", "POST", f"{llm}/summarize", {"last_hours": 24}, analysis),
        ("users/me", "GET", "/api/v1/users/me", None, me),
    ]


def rate_probe(http: httpx.Client) -> tuple[bool, int | None, str]:
    """The rate window counts requests: users/me before and after one more request."""
    before = http.get("/api/v1/users/me")
    after = http.get("/api/v1/users/me")
    if before.status_code == 429 or after.status_code == 429:
        body = (after if after.status_code == 429 else before).json()
        ok = body.get("code") == "rate_limited" and "retry-after" in after.headers
        return ok, 429, f"limited: retry after {body.get('retry_after')}s"
    if before.status_code != 200 or after.status_code != 200:
        return False, after.status_code, after.text[:120]
    first, second = before.json()["rate_limit"], after.json()["rate_limit"]
    if second["limit"] is None:
        return True, 200, "rate limiting is disabled"
    counted = second["used"] > first["used"] or second["used"] == second["limit"]
    detail = f"{second['used']}/{second['limit']} per {second['window_seconds']:g}s"
    return counted, 200, detail


def run_checks(base_url: str, api_key: str, timeout: float) -> list[Outcome]:
    outcomes: list[Outcome] = []
    headers = {"Authorization": f"Bearer {api_key}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=timeout) as http:
        for name, method, path, body, check in plan():
            began = time.perf_counter()
            try:
                resp = http.request(method, path, json=body)
                problem, status = check(resp), resp.status_code
            except (httpx.HTTPError, ValueError) as exc:
                problem, status = f"{type(exc).__name__}: {exc}"[:120] or "failed", None
            seconds = time.perf_counter() - began
            outcomes.append(Outcome(name, not problem, status, seconds, problem))
        began = time.perf_counter()
        try:
            passed, status, detail = rate_probe(http)
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            passed, status, detail = False, None, f"{type(exc).__name__}: {exc}"[:120]
        outcomes.append(Outcome("rate limit", passed, status, time.perf_counter() - began, detail))
    return outcomes


def table(outcomes: list[Outcome]) -> str:
    rows = [f"{'check':18s} {'result':6s} {'status':6s} {'seconds':>8s}  detail"]
    for o in outcomes:
        result = "PASS" if o.passed else "FAIL"
        status = str(o.status) if o.status is not None else "-"
        rows.append(f"{o.name:18s} {result:6s} {status:6s} {o.seconds:8.2f}  {o.detail}")
    failed = sum(not o.passed for o in outcomes)
    rows.append(f"{len(outcomes) - failed}/{len(outcomes)} passed")
    return "\n".join(rows)


def run(args: argparse.Namespace) -> int:
    base = args.base_url
    if base is None:
        settings = get_settings()
        base = f"http://{settings.api_host}:{settings.api_port}"
    outcomes = run_checks(base.rstrip("/"), args.api_key, args.timeout)
    print(table(outcomes))
    return 0 if all(o.passed for o in outcomes) else 1
