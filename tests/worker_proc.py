"""Tests use the package's worker runner (shared with the benchmarks and the demo)."""

from loglytics.embedded.worker import READY_MARK, WorkerProcess

__all__ = ["READY_MARK", "WorkerProcess"]
