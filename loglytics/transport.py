"""Faust's Kafka transport with the consumer's fetch wait taken from the settings.

Why: Faust's aiokafka driver builds its worker consumer with a fixed
`fetch_max_wait_ms=1500`. Kafka answers such a long poll as soon as data
arrives, so there it costs nothing; the embedded broker (Tansu) holds it for
the whole wait, which put 0.7 s on average (measured: p50 703 ms with 1,500,
5 ms with 20) on every hop of a request and every quota admission. The app
built by `create_app` uses this transport, which sets the wait from
`LoglyticsApp.fetch_max_wait_ms` before the consumer starts.
"""

from __future__ import annotations

from typing import Any, cast

import aiokafka
import faust
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TransportT

DEFAULT_FETCH_MAX_WAIT_MS = 1500
EMBEDDED_FETCH_MAX_WAIT_MS = 10


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        app = cast(LoglyticsApp, self.app)
        # aiokafka reads it when the consumer starts (its fetcher is built in start()).
        consumer._fetch_max_wait_ms = app.fetch_max_wait_ms
        return consumer


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class _Transport(faust_aiokafka.Transport):
    Consumer = _Consumer


class LoglyticsApp(faust.App):
    """`faust.App` whose worker consumer waits at most `fetch_max_wait_ms` per fetch."""

    fetch_max_wait_ms: int = DEFAULT_FETCH_MAX_WAIT_MS

    def __init__(self, *args: Any, fetch_max_wait_ms: int, **kwargs: Any) -> None:
        self.fetch_max_wait_ms = fetch_max_wait_ms
        super().__init__(*args, **kwargs)

    def _new_transport(self) -> TransportT:
        return _Transport(self.conf.broker_consumer, self)
