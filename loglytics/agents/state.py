"""Changelog-backed tables of the ingest stage.

Keys start with the message key `tenant/source`, and the app's partitioner
hashes only that prefix, so `use_partitioner=True` puts each row on the
partition of the messages it describes (see `loglytics.partitioning`).
"""

from __future__ import annotations

import faust

from loglytics.app import app

_SCHEMA = faust.Schema(key_type=bytes, key_serializer="raw", value_serializer="json")

# tenant/source -> open windows, last absorbed offset, watermark (see loglytics.windowing)
ingest_state = app.Table(
    "ingest-state",
    default=None,
    schema=_SCHEMA,
    partitions=app.conf.topic_partitions,
)

# tenant/source#template_id -> TemplateState.to_dict()
template_table = app.Table(
    "templates",
    default=None,
    schema=_SCHEMA,
    partitions=app.conf.topic_partitions,
)
