"""Message sizes agree end to end: code limits against the compose file's broker and topics.

Why: Kafka refuses a record batch larger than the topic's `max.message.bytes`
(the broker's `message.max.bytes` unless the topic overrides it), a producer
refuses a message over its own `max_request_size` before sending, and aiokafka
skips, with a `RecordTooLargeError`, a record larger than the consumer's
`max_partition_fetch_bytes`. Each limit lives in a different file; a change to
one (a bigger gateway body, a bigger `send` batch) otherwise only shows up as
messages refused or lost in production. The limits are read from the objects
the code builds (the Faust app's configuration, the aiokafka clients'
constructor arguments), not copied here.
"""

from __future__ import annotations

import asyncio
import inspect
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiokafka
import orjson
import pytest
import yaml
from aiokafka.record.default_records import DefaultRecordBatchBuilder

import loglytics.clients
import loglytics.commands.send
import loglytics.commands.tenants
import loglytics.kafka_clients
from loglytics.app import create_app
from loglytics.clients import RequestClient, new_request_id
from loglytics.deadletters import largest_whole_original
from loglytics.gateway.body import MAX_BODY_BYTES
from loglytics.ingest import IngestStage
from loglytics.ingest.pipeline import Decoded
from loglytics.ingest.windows import MAX_TEMPLATE_CHARS, MAX_WINDOW_TEMPLATES
from loglytics.kafka_clients import MAX_MESSAGE_BYTES, KafkaConnection
from loglytics.schemas import DeadLetter, LLMRequest, LogBatch, TenantRecord, WindowDigest
from loglytics.settings import Settings
from loglytics.topics import (
    ALL_TOPICS,
    DEADLETTER,
    FINDINGS,
    RAW_LOGS,
    REQUESTS,
    RESPONSES,
    TENANTS,
    USAGE,
    WINDOWS,
)

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.kafka.yml"
KAFKA_DEFAULT_MESSAGE_MAX_BYTES = 1_048_588  # Kafka's own default for message.max.bytes
# Topics anyone may write to (a log shipper other than `loglytics send`): their
# consumers must take whatever the topic allows, not only what our producers make.
OPEN_TOPICS = frozenset({RAW_LOGS.name})
WORKER_PRODUCES = (WINDOWS, FINDINGS, RESPONSES, USAGE, DEADLETTER)
WORKER_CONSUMES = (RAW_LOGS, WINDOWS, FINDINGS, REQUESTS, USAGE, TENANTS)


def _defaults(cls: type) -> dict[str, Any]:
    return {
        name: p.default
        for name, p in inspect.signature(cls).parameters.items()
        if p.default is not inspect.Parameter.empty
    }


PRODUCER_DEFAULTS = _defaults(aiokafka.AIOKafkaProducer)
CONSUMER_DEFAULTS = _defaults(aiokafka.AIOKafkaConsumer)


# -- the compose file's limits --------------------------------------------------------------


@dataclass(frozen=True)
class BrokerLimits:
    broker: int
    topics: dict[str, int]  # max.message.bytes per topic created by kafka-init


def _env(service: dict[str, Any]) -> dict[str, str]:
    return {str(k): str(v) for k, v in (service.get("environment") or {}).items()}


def _configs(text: str, env: dict[str, str]) -> dict[str, str]:
    """`--config k=v` pairs of a shell line, with kafka-init's `$$NAME` resolved."""
    configs = {}
    for key, value in re.findall(r"--config\s+([\w.]+)=(\S+)", text):
        value = value.strip("\"'")
        ref = re.fullmatch(r"\$\$\{?(\w+)\}?", value)
        configs[key] = env[ref.group(1)] if ref else value
    return configs


def compose_limits() -> BrokerLimits:
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    kafka_env = _env(services["kafka"])
    broker = int(kafka_env.get("KAFKA_MESSAGE_MAX_BYTES", KAFKA_DEFAULT_MESSAGE_MAX_BYTES))
    init = services["kafka-init"]
    script = "\n".join(init["command"])
    env = _env(init)
    body = re.search(r"create\(\)\s*\{(.*?)\n\s*\}", script, re.S)
    common = _configs(body.group(1), env) if body else {}
    topics = {}
    for line in script.splitlines():
        named = re.match(r"\s*create\s+--topic\s+([\w.-]+)(.*)", line)
        if named:
            configs = common | _configs(named.group(2), env)
            topics[named.group(1)] = int(configs.get("max.message.bytes", broker))
    return BrokerLimits(broker, topics)


# -- the code's limits ----------------------------------------------------------------------


class _Built(Exception):
    """Raised by a recorded client's start(): the test only wanted its arguments."""


class _Recorded:
    """Stands in for an aiokafka client: keeps the constructor's arguments, never connects."""

    made: list[tuple[str, dict[str, Any]]]

    def __init__(self, *topics: str, **kwargs: Any) -> None:
        self.made.append((type(self).__name__, kwargs))

    async def start(self) -> None:
        raise _Built

    async def stop(self) -> None:
        return None


@dataclass(frozen=True)
class Producer:
    name: str
    max_request_size: int
    max_batch_size: int
    topics: tuple[str, ...]


@dataclass(frozen=True)
class Consumer:
    name: str
    max_partition_fetch_bytes: int
    fetch_max_bytes: int
    topics: tuple[str, ...]


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """aiokafka's clients replaced by `_Recorded` stand-ins where every client is built:
    the one factory, `loglytics.kafka_clients`."""
    made: list[tuple[str, dict[str, Any]]] = []
    producer = type("AIOKafkaProducer", (_Recorded,), {"made": made})
    consumer = type("AIOKafkaConsumer", (_Recorded,), {"made": made})

    async def no_topics(*args: Any, **kwargs: Any) -> None:
        return None

    monkeypatch.setattr(loglytics.kafka_clients, "AIOKafkaProducer", producer)
    monkeypatch.setattr(loglytics.kafka_clients, "AIOKafkaConsumer", consumer)
    monkeypatch.setattr(loglytics.clients, "ensure_topics", no_topics)
    yield made


def _producer(name: str, kwargs: dict[str, Any], topics: tuple[str, ...]) -> Producer:
    merged = PRODUCER_DEFAULTS | kwargs
    return Producer(name, merged["max_request_size"], merged["max_batch_size"], topics)


def _consumer(name: str, kwargs: dict[str, Any], topics: tuple[str, ...]) -> Consumer:
    merged = CONSUMER_DEFAULTS | kwargs
    return Consumer(name, merged["max_partition_fetch_bytes"], merged["fetch_max_bytes"], topics)


async def _built(made: list[tuple[str, dict[str, Any]]], start: Any) -> dict[str, dict[str, Any]]:
    made.clear()
    with pytest.raises(_Built):
        await start
    return {kind: kwargs for kind, kwargs in made}


def code_clients(
    made: list[tuple[str, dict[str, Any]]], tmp_path: Path
) -> tuple[list[Producer], list[Consumer]]:
    """Every producer and consumer the code builds, with the limits it builds them with."""

    async def build() -> tuple[dict[str, dict[str, Any]], ...]:
        kafka = KafkaConnection("127.0.0.1:9")
        request = await _built(made, RequestClient(kafka).start())
        record = TenantRecord(tenant="t")
        tenants = await _built(made, loglytics.commands.tenants.write_tenant(kafka, record))
        made.clear()
        loglytics.commands.send.shipper_producer(kafka)
        send = {kind: kwargs for kind, kwargs in made}
        return request, tenants, send

    request, tenants, send = asyncio.run(build())
    conf = create_app(Settings(state_dir=tmp_path)).conf
    worker_out = tuple(t.name for t in WORKER_PRODUCES)
    faust_out = Producer(
        "worker (Faust)", conf.producer_max_request_size, conf.producer_max_batch_size, worker_out
    )
    faust_in = Consumer(
        "worker (Faust)",
        conf.consumer_max_fetch_size,
        CONSUMER_DEFAULTS["fetch_max_bytes"],
        tuple(t.name for t in WORKER_CONSUMES),
    )
    producers = [
        _producer("gateway/ask (RequestClient)", request["AIOKafkaProducer"], (REQUESTS.name,)),
        _producer("loglytics send", send["AIOKafkaProducer"], (RAW_LOGS.name,)),
        _producer("loglytics tenants", tenants["AIOKafkaProducer"], (TENANTS.name,)),
        faust_out,
    ]
    consumers = [
        _consumer("gateway/ask (RequestClient)", request["AIOKafkaConsumer"], (RESPONSES.name,)),
        faust_in,
    ]
    return producers, consumers


def largest_message(topic: str, limits: BrokerLimits, producers: list[Producer]) -> int:
    """The largest record that can be on `topic`: its limit, or what our producers can make."""
    if topic in OPEN_TOPICS:
        return limits.topics[topic]
    ours = [p.max_request_size for p in producers if topic in p.topics]
    return min([limits.topics[topic], *ours])


def _record_size(value: bytes, key: bytes | None = None) -> int:
    """The size aiokafka's producer checks against `max_request_size` for one record."""
    return int(DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, []))


# -- tests ------------------------------------------------------------------------------------


def test_every_topic_has_an_explicit_limit_the_broker_shares() -> None:
    """Topics carry their limit, so they keep it on a cluster whose broker default differs."""
    limits = compose_limits()
    assert set(limits.topics) == {t.name for t in ALL_TOPICS}
    script = "\n".join(yaml.safe_load(COMPOSE.read_text())["services"]["kafka-init"]["command"])
    assert "max.message.bytes" in script
    assert limits.broker > KAFKA_DEFAULT_MESSAGE_MAX_BYTES  # `send` needs more than the default
    assert set(limits.topics.values()) == {limits.broker}


def test_every_producer_fits_the_topics_it_writes(
    recorded: list[tuple[str, dict[str, Any]]], tmp_path: Path
) -> None:
    limits = compose_limits()
    producers, _ = code_clients(recorded, tmp_path)
    for producer in producers:
        for topic in producer.topics:
            allowed = limits.topics[topic]
            assert producer.max_request_size <= allowed, (
                f"{producer.name}: a {producer.max_request_size}-byte message would be refused "
                f"by {topic} (max.message.bytes {allowed})"
            )
            assert producer.max_batch_size <= allowed, f"{producer.name}: batches too big"


def test_every_consumer_can_fetch_the_largest_message_of_its_topics(
    recorded: list[tuple[str, dict[str, Any]]], tmp_path: Path
) -> None:
    limits = compose_limits()
    producers, consumers = code_clients(recorded, tmp_path)
    for consumer in consumers:
        assert consumer.fetch_max_bytes >= consumer.max_partition_fetch_bytes, consumer.name
        for topic in consumer.topics:
            largest = largest_message(topic, limits, producers)
            assert consumer.max_partition_fetch_bytes >= largest, (
                f"{consumer.name} fetches {consumer.max_partition_fetch_bytes} bytes per "
                f"partition: a {largest}-byte record of {topic} would be skipped"
            )


def test_the_largest_gateway_body_fits_one_request_message(
    recorded: list[tuple[str, dict[str, Any]]], tmp_path: Path
) -> None:
    """A body at the gateway's limit becomes one LLMRequest the producer and topic accept."""
    producers, _ = code_clients(recorded, tmp_path)
    gateway = next(p for p in producers if REQUESTS.name in p.topics)
    request = LLMRequest(
        request_id=new_request_id(),
        tenant="t" * 64,
        api_key="k" * 256,
        task="summarize",
        input={"text": "x" * MAX_BODY_BYTES},  # no body can hold more input than itself
    )
    size = _record_size(request.to_bytes(), request.tenant.encode())
    assert size <= gateway.max_request_size
    assert size <= compose_limits().topics[REQUESTS.name]


def test_a_dead_letter_of_the_largest_raw_message_fits(
    recorded: list[tuple[str, dict[str, Any]]], tmp_path: Path
) -> None:
    """The largest raw message the worker dead-letters whole fits the worker's producer and
    the `deadletter` topic, and it is what `send` makes at most: a raw message of logs.raw
    is an open topic's, so anything larger (up to the topic's limit) is cut to fit instead
    (test_dead_letters.py)."""
    limits = compose_limits()
    producers, _ = code_clients(recorded, tmp_path)
    worker = next(p for p in producers if DEADLETTER.name in p.topics)
    whole = largest_whole_original()
    assert whole >= 3 * largest_message(RAW_LOGS.name, limits, producers) // 4 - 64 * 1024
    original = b"x" * whole
    letter = DeadLetter.of("ingest", "unparseable", original, topic=RAW_LOGS.name)
    size = _record_size(letter.to_bytes(), b"ingest")
    assert size <= worker.max_request_size
    assert size <= limits.topics[DEADLETTER.name]
    assert DeadLetter.from_bytes(letter.to_bytes()).original == original


def test_send_batches_of_long_lines_can_be_dead_lettered_whole() -> None:
    """`send` cuts a batch by bytes too: 500 lines of 60 kB (30 MB by line count alone)
    become several LogBatches, each one the worker can dead-letter whole."""
    tenant, source = "t" * 64, "s" * 64
    lines = [f"{i:05d} " + "\x01é\\" * 10_000 + "\n" for i in range(500)]
    budget = loglytics.commands.send.batch_line_bytes(tenant, source, "plain")
    chunks = list(loglytics.commands.send.batches(lines, 500, budget))
    assert len(chunks) > 1
    assert [line for chunk in chunks for line in chunk] == [line.rstrip("\n") for line in lines]
    for chunk in chunks:
        value = LogBatch(tenant=tenant, source=source, format="plain", lines=chunk).to_bytes()
        assert len(value) <= largest_whole_original()


async def test_a_window_of_a_thousand_long_templates_fits_one_message_with_room() -> None:
    """1,000 lines of about 20 KB, each of its own shape (its own template), in one
    window of one source. Unbounded, the digest and the state row were 15.5 MB each,
    which the producer refuses (over `MAX_MESSAGE_BYTES`); bounded, both are small
    enough for a state row to hold several such windows, and every line is counted."""
    sent: list[bytes] = []

    class Windows:
        def send_soon(self, *, key: bytes, value: bytes) -> asyncio.Future[None]:
            sent.append(value)
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            done.set_result(None)
            return done

    async def no_dead_letters(
        stage: str, reason: str, event: object, original: bytes | None = None
    ) -> None:
        raise AssertionError(f"dead-lettered: {stage}: {reason}")

    state: dict[bytes, Any] = {}
    stage = IngestStage(
        Settings(),
        state_table=state,
        template_table={},
        windows_out=Windows(),
        dead_letter=no_dead_letters,
    )
    start = (time.time() - 3600) // 60 * 60
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start + 1))
    lines = [
        f"{stamp} ERROR [svc] " + " ".join(f"w{i}x{j}" for j in range(2500 + i))
        for i in range(1000)
    ]
    messages = [
        (Decoded("acme", "wide", None, lines[k : k + 100]), 0, k // 100)
        for k in range(0, len(lines), 100)
    ]
    await stage.absorb({"acme/wide": messages})
    row = orjson.dumps(state[b"acme/wide"])
    stage.last_arrival["acme/wide"] = time.monotonic() - 60  # gone quiet: the window closes
    await stage.close_idle()
    (value,) = sent
    digest = WindowDigest.from_bytes(value)
    assert digest.line_count == 1000 and len(digest.templates) == MAX_WINDOW_TEMPLATES
    assert all(len(t.template) <= MAX_TEMPLATE_CHARS for t in digest.templates)
    for what, size in (("state row", len(row)), ("digest", len(value))):
        assert size < MAX_MESSAGE_BYTES // 8, f"{what} of {size:,} bytes"
