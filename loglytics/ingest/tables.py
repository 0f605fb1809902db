"""Changelog-backed tables of the ingest stage.

Keys start with the message key `tenant/source`, and the app's partitioner
hashes only that prefix, so `use_partitioner=True` puts each row on the
partition of the messages it describes (see `loglytics.partitioning`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import faust
from faust.types import TableT


@dataclass(frozen=True)
class IngestTables:
    """`state`: tenant/source -> the source's open windows, offsets, watermark, activity.
    `templates`: tenant/source#template_id -> the template's exported state."""

    state: TableT[bytes, Any]
    templates: TableT[bytes, Any]


def declare_tables(app: faust.App) -> IngestTables:
    def table(name: str) -> TableT[bytes, Any]:
        return app.Table(
            name,
            default=None,
            key_type=bytes,  # raw keys: the partitioner hashes the same bytes as the source's key
            partitions=app.conf.topic_partitions,
        )

    return IngestTables(state=table("ingest-state"), templates=table("templates"))
