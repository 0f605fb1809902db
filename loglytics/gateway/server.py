"""`loglytics api`: the gateway app on uvicorn, bound to `API_HOST:API_PORT`."""

from __future__ import annotations

import argparse

import uvicorn

from loglytics.gateway.app import build_app
from loglytics.gateway.backend import KafkaBackend
from loglytics.gateway.incidents import KafkaIncidentDesk
from loglytics.kafka_clients import KafkaConnection
from loglytics.settings import get_settings


def run(args: argparse.Namespace) -> int:
    settings = get_settings()
    host = args.host or settings.api_host
    port = args.port if args.port is not None else settings.api_port
    kafka = KafkaConnection.from_settings(settings)
    backend = KafkaBackend(kafka, partitions=settings.topic_partitions)
    desk = KafkaIncidentDesk(kafka, partitions=settings.topic_partitions)
    uvicorn.run(
        build_app(backend, reply_timeout=settings.api_reply_timeout_seconds, incidents=desk),
        host=host,
        port=port,
        log_level=settings.log_level.lower(),
        access_log=settings.log_level == "DEBUG",
    )
    return 0
