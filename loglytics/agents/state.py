"""Changelog-backed tables of the ingest stage.

Keys start with the message key `tenant/source`, and the app's partitioner
hashes only that prefix, so `use_partitioner=True` puts each row on the
partition of the messages it describes (see `loglytics.partitioning`).
"""

from __future__ import annotations

from loglytics.app import app

# tenant/source -> open windows, last absorbed offset, watermark (see loglytics.windowing)
ingest_state = app.Table(
    "ingest-state",
    default=None,
    key_type=bytes,  # raw keys: the partitioner hashes the same bytes as the source's key
    partitions=app.conf.topic_partitions,
)

# tenant/source#template_id -> TemplateState.to_dict()
template_table = app.Table(
    "templates",
    default=None,
    key_type=bytes,  # raw keys: the partitioner hashes the same bytes as the source's key
    partitions=app.conf.topic_partitions,
)
