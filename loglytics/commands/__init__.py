"""CLI commands that act as Kafka clients (they need no running worker of their own)."""

from __future__ import annotations

import sys

from loglytics.settings import get_settings

NO_BROKER = "no broker: set KAFKA_BOOTSTRAP_SERVERS or run `loglytics stack up`"


def broker() -> str | None:
    """The broker's address (configured or the running embedded stack's), or None with a
    message on stderr: every client command exits 2 without one."""
    bootstrap = get_settings().kafka_bootstrap_servers
    if not bootstrap:
        print(NO_BROKER, file=sys.stderr)
        return None
    return bootstrap
