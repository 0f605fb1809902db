"""Kafka TLS and SASL, from the settings to a worker running a stream over TLS.

The broker is the embedded Tansu behind a TLS front that requires a client
certificate (see tls_kit for why a front), so the test shows each client the
worker builds (Faust's producer, consumer and admin, the serving stage's
offset check) and the test's own factory-built clients verify the broker
against the CA, present the client certificate, and never fall back to
plaintext. SASL: Tansu's `--authentication` offers SCRAM only and has no way
to seed a credential on memory storage, so the SASL test goes as far as the
exchange itself.
"""

from __future__ import annotations

import ast
import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka.errors import KafkaConnectionError
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth
from tls_kit import Pki, TlsFront, make_pki

from loglytics.embedded.ports import free_port, wait_tcp
from loglytics.embedded.processes import spawn, stop_pid
from loglytics.embedded.stack import StackState, tansu_binary
from loglytics.embedded.worker import WorkerProcess
from loglytics.kafka_admin import ensure_topics, read_topic
from loglytics.kafka_clients import KafkaConnection, KafkaSecurity
from loglytics.schemas import LogBatch
from loglytics.settings import SettingsError, load_settings

ROOT = Path(__file__).resolve().parent.parent
TENANT = "tls-tenant"
CLIENT_CLASSES = {"AIOKafkaProducer", "AIOKafkaConsumer", "AIOKafkaAdminClient"}


def _tansu(log: Path, port: int, advertised: int, *extra: str) -> int:
    proc = spawn(
        [
            str(tansu_binary()),
            "broker",
            "--listener-url",
            f"tcp://127.0.0.1:{port}",
            "--advertised-listener-url",
            f"tcp://127.0.0.1:{advertised}",
            "--storage-engine",
            "memory://tansu/",
            *extra,
        ],
        log,
        tied=True,
    )
    wait_tcp("127.0.0.1", port, 20, "Tansu broker")
    return proc.pid


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def tls_broker(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsFront]:
    """Tansu on a private port, reachable only through a mutual-TLS front it advertises."""
    upstream, front_port = free_port(), free_port()
    pid = _tansu(tmp_path_factory.mktemp("tansu") / "tansu.log", upstream, front_port)
    front = TlsFront(pki, front_port, upstream, require_client_cert=True)
    front.start()
    try:
        yield front
    finally:
        front.stop()
        stop_pid(pid)


def _tls(pki: Pki, front: TlsFront, *, client_cert: bool = True) -> KafkaConnection:
    security = KafkaSecurity(
        protocol="SSL",
        ssl_cafile=pki.ca,
        ssl_certfile=pki.client_cert if client_cert else None,
        ssl_keyfile=pki.client_key if client_cert else None,
    )
    return KafkaConnection(f"127.0.0.1:{front.port}", security)


async def _produce(kafka: KafkaConnection, messages: list[tuple[bytes, bytes]]) -> None:
    await ensure_topics(kafka, 4)
    producer = kafka.producer()
    await producer.start()
    try:
        for key, value in messages:
            await producer.send_and_wait("logs.raw", value=value, key=key)
    finally:
        await producer.stop()


async def _connects(kafka: KafkaConnection) -> bool:
    producer = kafka.producer(request_timeout_ms=3000, metadata_max_age_ms=3000)
    try:
        await asyncio.wait_for(producer.start(), 10)
    except (KafkaConnectionError, TimeoutError, OSError):
        return False
    finally:
        await producer.stop()
    return True


def _lines(start: float, count: int) -> list[str]:
    return [
        time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(start + i * 0.5))
        + f",000 INFO [main] com.shop.Api: served request {i} for user{i % 3}"
        for i in range(count)
    ]


def test_the_front_refuses_plaintext_and_clients_without_a_certificate(
    pki: Pki, tls_broker: TlsFront
) -> None:
    """Otherwise the stream test below could pass without TLS doing anything."""
    address = f"127.0.0.1:{tls_broker.port}"
    assert not asyncio.run(_connects(KafkaConnection(address)))
    assert not asyncio.run(_connects(_tls(pki, tls_broker, client_cert=False)))
    untrusted = KafkaConnection(address, KafkaSecurity(protocol="SSL"))  # system CAs only
    assert not asyncio.run(_connects(untrusted))
    assert asyncio.run(_connects(_tls(pki, tls_broker)))


def test_a_worker_runs_a_stream_end_to_end_over_tls(
    pki: Pki, tls_broker: TlsFront, tmp_path: Path
) -> None:
    kafka = _tls(pki, tls_broker)
    stack = StackState(kafka=kafka.bootstrap, llamacpp=f"http://127.0.0.1:{free_port()}")
    worker = WorkerProcess(
        stack,
        tmp_path,
        window_seconds=10,
        allowed_lateness_seconds=0,
        window_idle_close_seconds=2,
        kafka_security_protocol="SSL",
        kafka_ssl_cafile=str(pki.ca),
        kafka_ssl_certfile=str(pki.client_cert),
        kafka_ssl_keyfile=str(pki.client_key),
    )
    t0 = (int(time.time() - 7200) // 60) * 60.0
    sent = [LogBatch(tenant=TENANT, source="api", lines=_lines(t0 + w * 10, 15)) for w in range(4)]
    handshakes_before = tls_broker.handshakes
    worker.start(timeout=90)
    try:
        asyncio.run(_produce(kafka, [(f"{TENANT}/api".encode(), b.to_bytes()) for b in sent]))
        deadline, covered = time.monotonic() + 90, 0
        while time.monotonic() < deadline and covered < 45:  # the last window may stay open
            windows = [_window(v) for v in asyncio.run(read_topic(kafka, "logs.windows", 500))]
            covered = sum(lines for tenant, lines in windows if tenant == TENANT)
            time.sleep(1)
    finally:
        worker.stop()
    assert covered >= 45, f"windows cover {covered} of 60 lines over TLS\n{worker.tail()}"
    assert tls_broker.handshakes > handshakes_before  # every connection went through TLS


def _window(value: bytes) -> tuple[str, int]:
    import orjson

    obj = orjson.loads(value)
    return obj["tenant"], int(obj["line_count"])


def test_sasl_scram_reaches_the_brokers_exchange(tmp_path: Path) -> None:
    """Tansu with `--authentication` speaks SCRAM (not PLAIN): our SCRAM client gets through
    the handshake to the credential check, which refuses a user the broker does not have;
    plaintext and PLAIN clients are refused before that. A successful login needs a
    credential, and Tansu on memory storage has no way to be given one before the first
    authenticated connection (aiokafka has no AlterUserScramCredentials)."""
    port = free_port()
    log = tmp_path / "tansu.log"
    pid = _tansu(log, port, port, "--authentication")
    address = f"127.0.0.1:{port}"
    try:
        scram = KafkaSecurity(
            protocol="SASL_PLAINTEXT",
            sasl_mechanism="SCRAM-SHA-256",
            sasl_username="nobody",
            sasl_password="secret",
        )
        plain = KafkaSecurity(
            protocol="SASL_PLAINTEXT", sasl_username="nobody", sasl_password="secret"
        )
        for security in (KafkaSecurity(), plain):
            assert not asyncio.run(_connects(KafkaConnection(address, security)))
        refused_before_scram = log.read_text().count("NoSharedMechanism")
        with pytest.raises(Exception) as failure:  # aiokafka: KeyError on the error reply
            asyncio.run(_start(KafkaConnection(address, scram)))
        assert not isinstance(failure.value, KafkaConnectionError | TimeoutError)
        assert log.read_text().count("NoSharedMechanism") == refused_before_scram
    finally:
        stop_pid(pid)


async def _start(kafka: KafkaConnection) -> None:
    producer = kafka.producer(request_timeout_ms=3000)
    try:
        await asyncio.wait_for(producer.start(), 10)
    finally:
        await producer.stop()


# -- the configuration path --------------------------------------------------------------


def test_settings_build_each_protocols_client_options(pki: Pki) -> None:
    settings = load_settings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="svc",
        kafka_sasl_password="pw",
        kafka_ssl_cafile=str(pki.ca),
    )
    options = KafkaSecurity.from_settings(settings).client_options()
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == ("svc", "pw")
    assert options["ssl_context"].verify_mode.name == "CERT_REQUIRED"
    plain = KafkaSecurity.from_settings(load_settings()).client_options()
    assert plain == {"security_protocol": "PLAINTEXT"}
    sasl_plaintext = KafkaSecurity(
        protocol="SASL_PLAINTEXT", sasl_username="u", sasl_password="p"
    ).client_options()
    assert "ssl_context" not in sasl_plaintext
    assert sasl_plaintext["sasl_mechanism"] == "PLAIN"


@pytest.mark.parametrize(
    ("protocol", "mechanism"),
    [
        ("PLAINTEXT", "PLAIN"),
        ("SSL", "PLAIN"),
        ("SASL_PLAINTEXT", "PLAIN"),
        ("SASL_PLAINTEXT", "SCRAM-SHA-256"),
        ("SASL_SSL", "SCRAM-SHA-512"),
    ],
)
def test_faust_gets_the_same_security_as_every_other_client(
    pki: Pki, protocol: str, mechanism: str
) -> None:
    """Faust turns `broker_credentials` into aiokafka options itself: they must match ours."""
    security = KafkaSecurity(
        protocol=protocol,  # type: ignore[arg-type]
        sasl_mechanism=mechanism,  # type: ignore[arg-type]
        sasl_username="u",
        sasl_password="p",
        ssl_cafile=pki.ca,
    )
    faust_side = {
        k: v
        for k, v in credentials_to_aiokafka_auth(security.faust_credentials()).items()
        if v is not None
    }
    ours = security.client_options()
    assert faust_side.keys() == ours.keys()
    assert ("ssl_context" in ours) == (protocol in ("SSL", "SASL_SSL"))
    faust_side.pop("ssl_context", None)
    ours.pop("ssl_context", None)
    assert faust_side == ours
    assert ours["security_protocol"] == protocol


def test_incomplete_security_settings_fail_at_start(pki: Pki) -> None:
    with pytest.raises(SettingsError, match="KAFKA_SASL_USERNAME"):
        load_settings(kafka_security_protocol="SASL_SSL")
    with pytest.raises(SettingsError, match="KAFKA_SSL_CERTFILE and KAFKA_SSL_KEYFILE"):
        load_settings(kafka_security_protocol="SSL", kafka_ssl_certfile=str(pki.client_cert))
    with pytest.raises(SettingsError, match="KAFKA_SASL_MECHANISM"):
        load_settings(kafka_sasl_mechanism="GSSAPI")


def test_security_options_cannot_be_overridden_per_client() -> None:
    with pytest.raises(TypeError, match="KafkaSecurity"):
        KafkaConnection("127.0.0.1:9").producer(security_protocol="PLAINTEXT")


def test_no_kafka_client_is_built_outside_the_factory() -> None:
    """Every aiokafka client of the package and of the tests comes from KafkaConnection."""
    factory = ROOT / "loglytics" / "kafka_clients.py"
    found = []
    for path in sorted([*(ROOT / "loglytics").rglob("*.py"), *(ROOT / "tests").glob("*.py")]):
        if path == factory or "__pycache__" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
                if name in CLIENT_CLASSES:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} {name}")
    assert found == []
