"""Faust's Kafka transport: the consumer's fetch wait from the settings, no dropped records.

Why the fetch wait: Faust's aiokafka driver builds its worker consumer with a fixed
`fetch_max_wait_ms=1500`. Kafka answers such a long poll as soon as data
arrives, so there it costs nothing; the embedded broker (Tansu) holds it for
the whole wait, which put 0.7 s on average (measured: p50 703 ms with 1,500,
5 ms with 20) on every hop of a request and every quota admission. The app
built by `create_app` uses this transport, which sets the wait from
`LoglyticsApp.fetch_max_wait_ms` before the consumer starts.

Why `getmany`: Faust's skips the fetched records of a partition paused while
they were fetched, and the consumer's position is already past them, so the
next record read looks like a compaction gap, which Faust counts as acked and
commits past. Here a partition left with records not handed out is sought back
to the first of them, so they are read again (at least once; the stages are
idempotent per message). A batch cut short by a rebalance is left to Faust:
the rebalance's recovery seeks every partition to its committed offset.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, cast

import aiokafka
import faust
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, Message, TransportT

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

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[TP, Message]]:
        """Faust's `getmany`, but what it does not hand out is fetched again (see above)."""
        if not self.flow_active:  # Faust's own path: it seeks back to committed offsets
            async for item in super().getmany(timeout):
                yield item
            return
        records, active = await self._wait_next_records(timeout)
        generation = self.app.consumer_generation_id
        if records is None or self.should_stop:
            return
        handed: dict[TP, int] = {}
        for tp, record in self.scheduler.iterate(records):
            if not self.flow_active or self.app.consumer_generation_id != generation:
                # A rebalance: its recovery seeks every partition to its committed offset.
                return
            if active is None or tp in active or tp in self._buffered_partitions:
                self.app.monitor.track_tp_end_offset(tp, self.highwater(tp))
                handed[tp] = record.offset
                yield tp, self._to_message(tp, record)
        if self.flow_active and self.app.consumer_generation_id == generation:
            await self._seek_back_unhanded(records, handed)

    async def _seek_back_unhanded(self, records: Any, handed: dict[TP, int]) -> None:
        """Seek back the agents' partitions; table changelogs are the recovery's to seek."""
        assigned = self.assignment()
        changelogs = self.app.tables.changelog_topics
        for tp, batch in records.items():
            left = [r.offset for r in batch if r.offset > handed.get(tp, -1)]
            if left and tp in assigned and tp.topic not in changelogs:
                self.log.info(
                    "fetching %s again from %d (%d not handed out)", tp, left[0], len(left)
                )
                await self.seek(tp, left[0])


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
