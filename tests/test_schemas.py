"""Message models: every model round-trips through its bytes, and the codecs are strict.

Why strict matters: a producer bug (a number where a string belongs, a field
from a newer version) must become a dead letter with a reason, never a value
silently coerced into something plausible.
"""

from __future__ import annotations

import base64

import orjson
import pytest

from loglytics.schemas import (
    SCHEMA_VERSION,
    BatchEvent,
    DeadLetter,
    DecodeError,
    ErrorInfo,
    Evidence,
    Finding,
    LLMRequest,
    LLMResponse,
    LLMStreamChunk,
    LogBatch,
    LogEvent,
    NumericStats,
    Record,
    Signal,
    TemplateCount,
    TenantRecord,
    TokenUsage,
    UsageRecord,
    WindowDigest,
    finding_id,
    hash_api_key,
    new_api_key,
)

SIGNAL = Signal(kind="error_burst", template_id="t1", detail="x", value=3.0, score=0.9)
EVIDENCE = Evidence(
    template_ids=["t1"], templates=["a <*>"], counts={"t1": 3}, exemplars=["a 1"], signals=[SIGNAL]
)
TEMPLATE = TemplateCount(
    template_id="t1",
    template="GET <*> status=<*>",
    count=7,
    level="INFO",
    new=True,
    exemplars=["GET /a status=200"],
    numeric=[NumericStats(position=1, count=7, min=200.0, max=500.0, mean=250.0)],
)

SAMPLES: list[Record] = [
    LogEvent(
        tenant="acme",
        source="api",
        message="boom",
        timestamp=1.5,
        level="ERROR",
        component="db",
        attributes={"k": "v"},
    ),
    BatchEvent(message="hello", timestamp=2.0, level="INFO", component=None),
    LogBatch(
        tenant="acme",
        source="api",
        format="log4j",
        lines=["a", "b"],
        events=[BatchEvent(message="c")],
    ),
    NumericStats(position=0, count=2, min=1.0, max=3.0, mean=2.0),
    TEMPLATE,
    WindowDigest(
        tenant="acme",
        source="api",
        window_start=60.0,
        window_end=120.0,
        line_count=7,
        level_counts={"INFO": 7},
        templates=[TEMPLATE],
        new_template_ids=["t1"],
        flagged_lines=1,
        closed_by="idle",
    ),
    SIGNAL,
    EVIDENCE,
    Finding(
        finding_id="f" * 24,
        tenant="acme",
        source="api",
        window_start=60.0,
        window_end=120.0,
        kind="error",
        category="database",
        severity="high",
        title="DB down",
        summary="connections refused",
        evidence=EVIDENCE,
        recommendations=["restart the pool"],
        confidence=0.8,
        model_used="llama3.2:3b",
        tokens_used=120,
        latency_ms=35.5,
        created_at=1.0,
    ),
    LLMRequest(
        request_id="r1",
        tenant="acme",
        api_key="llk_x",
        task="chat",
        input={"text": "hi", "n": [1, 2]},
        stream=True,
        max_tokens=64,
        temperature=0.2,
    ),
    ErrorInfo(error="quota_exceeded", message="daily calls", retry_after=30.0, limit=1000),
    TokenUsage(prompt_tokens=10, completion_tokens=5, estimated=True),
    LLMResponse(
        request_id="r1",
        tenant="acme",
        task="chat",
        ok=False,
        text="",
        data={"a": 1},
        model_used="m",
        provider="ollama",
        tokens_used=TokenUsage(prompt_tokens=1, completion_tokens=2),
        latency_ms=3.0,
        confidence_score=0.5,
        truncated=True,
        cached=True,
        error=ErrorInfo(error="internal", message="x"),
    ),
    LLMStreamChunk(request_id="r1", seq=3, delta="tok"),
    UsageRecord(
        tenant="acme",
        tier="free",
        task="chat",
        provider="ollama",
        model="m",
        prompt_tokens=3,
        completion_tokens=4,
        estimated=False,
        cached=False,
        latency_ms=1.0,
        ts=1000.0,
        request_id="r1",
    ),
    TenantRecord(tenant="acme", tier="pro", api_key_hashes=["h"], enabled=True, updated_at=5.0),
    DeadLetter.of("ingest", "invalid JSON", b"{oops", topic="logs.raw", partition=1, offset=9),
]


def _ids(model: Record) -> str:
    return type(model).__name__


@pytest.mark.parametrize("model", SAMPLES, ids=_ids)
def test_round_trip(model: Record) -> None:
    data = model.to_bytes()
    again = type(model).from_bytes(data)
    assert again == model
    assert again.to_bytes() == data
    assert orjson.loads(data)["schema_version"] == SCHEMA_VERSION
    # str and memoryview inputs decode the same way.
    assert type(model).from_bytes(data.decode()) == model
    assert type(model).from_bytes(memoryview(data)) == model


@pytest.mark.parametrize("model", SAMPLES, ids=_ids)
def test_extra_field_is_rejected(model: Record) -> None:
    obj = model.to_json()
    obj["surprise"] = 1
    with pytest.raises(DecodeError) as info:
        type(model).from_bytes(orjson.dumps(obj))
    assert "surprise" in info.value.reason


@pytest.mark.parametrize("model", SAMPLES, ids=_ids)
@pytest.mark.parametrize("version", [0, 2, "1", None])
def test_unsupported_schema_version(model: Record, version: object) -> None:
    obj = model.to_json()
    obj["schema_version"] = version
    with pytest.raises(DecodeError) as info:
        type(model).from_bytes(orjson.dumps(obj))
    assert "schema_version" in info.value.reason


def test_missing_schema_version_means_current() -> None:
    event = LogEvent.from_bytes(b'{"tenant": "acme", "source": "api", "message": "m"}')
    assert event.schema_version == SCHEMA_VERSION


@pytest.mark.parametrize(
    ("model", "field", "value"),
    [
        (LogEvent, "timestamp", "yesterday"),
        (LogEvent, "tenant", 5),
        (LogBatch, "lines", "not a list"),
        (LogBatch, "lines", [1, 2]),
        (WindowDigest, "line_count", "7"),
        (WindowDigest, "line_count", 7.5),
        (LLMRequest, "stream", "yes"),
        (LLMRequest, "max_tokens", 0),
        (UsageRecord, "prompt_tokens", -1),
        (TenantRecord, "tier", "gold"),
        (Finding, "severity", "apocalyptic"),
        (Finding, "confidence", 1.5),
    ],
)
def test_wrong_types_are_rejected_with_the_field(
    model: type[Record], field: str, value: object
) -> None:
    sample = next(s for s in SAMPLES if type(s) is model)
    obj = sample.to_json()
    obj[field] = value
    with pytest.raises(DecodeError) as info:
        model.from_bytes(orjson.dumps(obj))
    assert field in info.value.reason


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"{not json", "invalid JSON"),
        (b"", "invalid JSON"),
        (b"[1, 2]", "expected a JSON object"),
        (b'"text"', "expected a JSON object"),
        (b"null", "expected a JSON object"),
        (b"\xff\xfe", "invalid JSON"),
    ],
)
def test_not_an_object(data: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as info:
        LogBatch.from_bytes(data)
    assert reason in info.value.reason
    assert str(info.value) == info.value.reason


def test_missing_required_field() -> None:
    with pytest.raises(DecodeError) as info:
        LogBatch.from_bytes(b'{"source": "api", "lines": ["a"]}')
    assert "tenant" in info.value.reason


def test_ids_must_be_key_safe() -> None:
    for bad in ("", "a/b", "../etc", "x" * 65, "-lead"):
        with pytest.raises(DecodeError):
            LogEvent.from_obj({"tenant": bad, "source": "api", "message": "m"})


def test_reason_is_short_for_many_errors() -> None:
    obj = {"tenant": 1, "source": 2, "message": 3, "timestamp": "x", "level": 4, "component": 5}
    with pytest.raises(DecodeError) as info:
        LogEvent.from_obj(obj)
    assert "more" in info.value.reason
    assert info.value.reason.count(";") == 2


@pytest.mark.parametrize(
    "original", [b"\x00\xffbinary\n", b"", "caf\u00e9 \udcff".encode("utf-8", "surrogateescape")]
)
def test_dead_letter_keeps_original_bytes(original: bytes) -> None:
    letter = DeadLetter.of("ingest", "why", original, key=b"acme/api", partition=2, offset=7)
    assert letter.original == original
    again = DeadLetter.from_bytes(letter.to_bytes())
    assert again.original == original
    assert again.key == "acme/api"
    assert (again.partition, again.offset, again.stage, again.reason) == (2, 7, "ingest", "why")
    assert base64.b64decode(again.original_b64) == original
    assert again.ts > 0


def test_dead_letter_from_text_and_none() -> None:
    assert DeadLetter.of("s", "r", "caf\u00e9").original == "caf\u00e9".encode()
    undecodable = b"\xff\xfe".decode("utf-8", "surrogateescape")
    assert DeadLetter.of("s", "r", undecodable).original == b"\xff\xfe"
    assert DeadLetter.of("s", "r", None).original == b""
    assert len(DeadLetter.of("s", "x" * 5000, b"").reason) == 1000


def test_finding_id_is_deterministic() -> None:
    a = finding_id("acme", "api", 60.0, "error", "t1")
    assert a == finding_id("acme", "api", 60.0, "error", "t1")
    assert len(a) == 24 and all(c in "0123456789abcdef" for c in a)
    assert a == finding_id("acme", "api", 60.0001, "error", "t1")  # millisecond resolution
    others = {
        finding_id("acme2", "api", 60.0, "error", "t1"),
        finding_id("acme", "api2", 60.0, "error", "t1"),
        finding_id("acme", "api", 120.0, "error", "t1"),
        finding_id("acme", "api", 60.0, "anomaly", "t1"),
        finding_id("acme", "api", 60.0, "error", "t2"),
        # the separator keeps fields from running into each other
        finding_id("acm", "eapi", 60.0, "error", "t1"),
    }
    assert a not in others and len(others) == 6


def test_tenant_api_keys() -> None:
    key = new_api_key()
    assert key.startswith("llk_") and key != new_api_key()
    record = TenantRecord(tenant="acme", api_key_hashes=[hash_api_key(key)])
    assert record.accepts(key)
    assert not record.accepts(key + "x")
    assert not record.model_copy(update={"enabled": False}).accepts(key)


def test_token_usage_total_and_digest_key() -> None:
    assert TokenUsage(prompt_tokens=3, completion_tokens=4).total == 7
    digest = next(s for s in SAMPLES if isinstance(s, WindowDigest))
    assert digest.key == "acme/api/60"
