"""The one place aiokafka clients are built: every producer, consumer and admin client.

Why one factory: a broker that wants TLS or SASL refuses every client that was
built without them, and a client built by hand somewhere (a command, a bench,
the gateway) is the one that forgets. Callers hold a `KafkaConnection` (the
bootstrap servers and the security settings, frozen) and ask it for clients;
the Faust app takes the same settings through `faust_credentials`.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faust
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.helpers import create_ssl_context
from faust.types.auth import CredentialsT

from loglytics.settings import KafkaSaslMechanism, KafkaSecurityProtocol, Settings

# The largest record (key, value and framing) any loglytics producer makes and any client
# must fetch: the compose file's max.message.bytes for the broker and every topic
# (tests/test_message_sizes.py checks them against each other). Tansu sets no limit.
MAX_MESSAGE_BYTES = 8 << 20


@dataclass(frozen=True)
class KafkaSecurity:
    """How clients authenticate to the broker and verify it (PLAINTEXT by default)."""

    protocol: KafkaSecurityProtocol = "PLAINTEXT"
    sasl_mechanism: KafkaSaslMechanism = "PLAIN"
    sasl_username: str = ""
    sasl_password: str = field(default="", repr=False)
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    ssl_key_password: str = field(default="", repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> KafkaSecurity:
        return cls(
            protocol=settings.kafka_security_protocol,
            sasl_mechanism=settings.kafka_sasl_mechanism,
            sasl_username=settings.kafka_sasl_username,
            sasl_password=settings.kafka_sasl_password,
            ssl_cafile=settings.kafka_ssl_cafile,
            ssl_certfile=settings.kafka_ssl_certfile,
            ssl_keyfile=settings.kafka_ssl_keyfile,
            ssl_key_password=settings.kafka_ssl_key_password,
        )

    @property
    def uses_tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        return self.protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    def ssl_context(self) -> ssl.SSLContext | None:
        """A verifying context (the CA file, else the system's) with the client certificate,
        or None when the protocol has no TLS. Built per call: contexts read files."""
        if not self.uses_tls:
            return None
        context: ssl.SSLContext = create_ssl_context(
            cafile=self.ssl_cafile,
            certfile=self.ssl_certfile,
            keyfile=self.ssl_keyfile,
            password=self.ssl_key_password or None,
        )
        return context

    def client_options(self) -> dict[str, Any]:
        """The keyword arguments every aiokafka client takes for this security."""
        options: dict[str, Any] = {"security_protocol": self.protocol}
        context = self.ssl_context()
        if context is not None:
            options["ssl_context"] = context
        if self.uses_sasl:
            options["sasl_mechanism"] = self.sasl_mechanism
            options["sasl_plain_username"] = self.sasl_username
            options["sasl_plain_password"] = self.sasl_password
        return options

    def faust_credentials(self) -> CredentialsT | None:
        """The same security as Faust's `broker_credentials` (None: plaintext)."""
        context = self.ssl_context()
        if self.uses_sasl:
            return faust.SASLCredentials(
                username=self.sasl_username,
                password=self.sasl_password,
                ssl_context=context,
                mechanism=self.sasl_mechanism,
            )
        if context is not None:
            return faust.SSLCredentials(context)
        return None


@dataclass(frozen=True)
class KafkaConnection:
    """A broker's address and how to talk to it; the factory of every aiokafka client."""

    bootstrap: str
    security: KafkaSecurity = KafkaSecurity()

    @classmethod
    def from_settings(cls, settings: Settings) -> KafkaConnection:
        """The configured broker (the embedded default address when none is set)."""
        bootstrap = settings.kafka_bootstrap_servers or "127.0.0.1:9092"
        return cls(bootstrap, KafkaSecurity.from_settings(settings))

    def producer(self, **options: Any) -> AIOKafkaProducer:
        return AIOKafkaProducer(bootstrap_servers=self.bootstrap, **self._with(options))

    def consumer(self, *topics: str, **options: Any) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(*topics, bootstrap_servers=self.bootstrap, **self._with(options))

    def admin(self, **options: Any) -> AIOKafkaAdminClient:
        return AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, **self._with(options))

    def _with(self, options: dict[str, Any]) -> dict[str, Any]:
        overlap = set(options) & {"security_protocol", "ssl_context", "sasl_mechanism"}
        if overlap:
            raise TypeError(f"security options come from KafkaSecurity, not {sorted(overlap)}")
        return {**self.security.client_options(), **options}
