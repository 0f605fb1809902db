"""The Faust app, configured from the one settings object.

The app is the only mutable state shared by a worker's stages (Faust requires
one). It is built by `loglytics.worker.build_worker`, which then registers
every stage's agents, tables and timers on it; nothing is built at import.
"""

from __future__ import annotations

import faust

from loglytics.kafka_clients import MAX_MESSAGE_BYTES, KafkaSecurity
from loglytics.partitioning import (
    CoPartitionedGlobalTable,
    CoPartitionedTable,
    tenant_partitioner,
)
from loglytics.settings import Settings
from loglytics.transport import (
    DEFAULT_FETCH_MAX_WAIT_MS,
    EMBEDDED_FETCH_MAX_WAIT_MS,
    LoglyticsApp,
)


def create_app(settings: Settings) -> faust.App:
    """A Faust app configured from the settings (its data directory is created here)."""
    embedded = settings.embedded_kafka or settings.kafka_embedded
    broker = settings.kafka_bootstrap_servers or "127.0.0.1:9092"
    datadir = settings.state_dir / "faust"
    datadir.mkdir(parents=True, exist_ok=True)
    return LoglyticsApp(
        settings.app_id,
        fetch_max_wait_ms=EMBEDDED_FETCH_MAX_WAIT_MS if embedded else DEFAULT_FETCH_MAX_WAIT_MS,
        broker=",".join(f"kafka://{b}" for b in broker.split(",")),
        store="memory://",
        datadir=str(datadir),
        autodiscover=False,
        # The same TLS/SASL settings every other client takes (loglytics.kafka_clients).
        broker_credentials=KafkaSecurity.from_settings(settings).faust_credentials(),
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=1,
        producer_partitioner=tenant_partitioner,
        Table=CoPartitionedTable,
        GlobalTable=CoPartitionedGlobalTable,
        # Tansu answers ListOffsets(latest) with the last batch's base offset + 1,
        # so changelog recovery stops early unless every batch holds one record.
        producer_max_batch_size=1 if embedded else 16384,
        producer_linger_ms=0 if embedded else 5,
        # Faust's default is 1,000,000 bytes: a dead letter (its original base64-encoded,
        # 4/3 of it) of a raw message over ~750 kB was refused; see loglytics.deadletters.
        producer_max_request_size=MAX_MESSAGE_BYTES,
        broker_session_timeout=settings.broker_session_timeout,
        broker_heartbeat_interval=min(3.0, settings.broker_session_timeout / 3),
        broker_commit_interval=1.0,
        consumer_auto_offset_reset="earliest",
        # Back pressure in messages, not bytes: a LogBatch holds hundreds of lines, so a
        # deep buffer lets a worker that is behind hold most of the topic in memory. Two
        # ingest batches' worth (BATCH_EVENTS), so the next batch is ready when one ends.
        stream_buffer_maxsize=1024,
        # A LogBatch of 500 lines is about 50 KB, so the default 1 MiB per partition and
        # fetch brought some twenty messages a round trip, and the stream ran dry between
        # ingest batches; 8 MiB keeps it fed (measured: pipeline 13% faster).
        consumer_max_fetch_size=MAX_MESSAGE_BYTES,
        web_bind=settings.web_host,
        web_host=settings.web_host,
        web_port=settings.web_port,
        web_in_thread=False,
        table_cleanup_interval=30.0,
        logging_config=None,
    )
