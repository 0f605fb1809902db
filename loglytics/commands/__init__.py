"""CLI commands that act as Kafka clients (they need no running worker of their own)."""

from __future__ import annotations

import sys

from loglytics.kafka_clients import KafkaConnection
from loglytics.settings import get_settings

NO_BROKER = "no broker: set KAFKA_BOOTSTRAP_SERVERS or run `loglytics stack up`"


def broker() -> KafkaConnection | None:
    """The broker (configured or the running embedded stack's) with the configured
    security, or None with a message on stderr: every client command exits 2 without one."""
    settings = get_settings()
    if not settings.kafka_bootstrap_servers:
        print(NO_BROKER, file=sys.stderr)
        return None
    return KafkaConnection.from_settings(settings)
