"""The ingest stage: parse, mine templates and cut tumbling windows, per tenant/source.

`agent` (on top) declares the stage on a worker's app; `stage` holds the
per-worker pipelines and the batch step; `pipeline` turns one Kafka message
into mined columns; `windows` folds them into windows and digests; `tables`
declares the changelog-backed state, and `state` names its rows (and reads
rows of the first layout).
"""

from loglytics.ingest.agent import register
from loglytics.ingest.stage import IngestStage, SourceWork

__all__ = ["IngestStage", "SourceWork", "register"]
