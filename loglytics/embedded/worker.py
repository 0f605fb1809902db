"""Real `loglytics worker` subprocesses against a stack: for tests, benchmarks and the demo.

Each gets its own app id (consumer group and changelog topics), web port, state
directory and ClickHouse directory, and is tied to its parent (it dies with it).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from loglytics.embedded.ports import free_port
from loglytics.embedded.processes import spawn, stop_pid
from loglytics.embedded.stack import StackState

READY_MARK = "Worker ready"


class WorkerProcess:
    """One worker subprocess with its own app id (consumer group, changelogs) and ports."""

    def __init__(
        self, stack: StackState, workdir: Path, app_id: str | None = None, **env: str | float
    ) -> None:
        self.stack = stack
        self.workdir = workdir
        self.app_id = app_id or f"t{uuid.uuid4().hex[:10]}"
        self.web_port = free_port()
        self.env = {
            **{
                k: v
                for k, v in os.environ.items()
                if not k.startswith(("KAFKA_", "OLLAMA_", "VLLM_"))
            },
            "KAFKA_BOOTSTRAP_SERVERS": stack.kafka,
            "KAFKA_EMBEDDED": "true",
            "LLAMACPP_BASE_URL": stack.llamacpp,
            "APP_ID": self.app_id,
            "WEB_PORT": str(self.web_port),
            "STATE_DIR": str(workdir / "state"),
            "CLICKHOUSE_DSN": f"chdb://{workdir / 'clickhouse'}",
            "BROKER_SESSION_TIMEOUT": "3",
            "LOG_LEVEL": "INFO",
            **{k.upper(): str(v) for k, v in env.items()},
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_file = workdir / f"worker-{self.app_id}.log"
        self.starts = 0

    def start(self, timeout: float = 60.0) -> None:
        self.wait_ready(self.spawn(), timeout)

    def spawn(self) -> int:
        """Start the process, not waiting for it; the log offset `wait_ready` reads from.

        Call it from the thread that lives as long as the worker should: the child gets
        SIGTERM when the thread that spawned it ends (PR_SET_PDEATHSIG is per thread)."""
        self.starts += 1
        marker = self.log_mark()
        self.proc = spawn(
            [sys.executable, "-m", "loglytics", "worker"], self.log_file, tied=True, env=self.env
        )
        return marker

    def log_mark(self) -> int:
        """Where the log ends now: `wait_logged` reads what comes after it."""
        return self.log_file.stat().st_size if self.log_file.exists() else 0

    def wait_ready(self, marker: int, timeout: float = 60.0) -> None:
        """Until the worker logs that it is ready (after `marker`); any thread may wait."""
        self.wait_logged(READY_MARK, marker, timeout, "ready")

    def wait_logged(self, text: str, marker: int, timeout: float, what: str) -> None:
        """Until the worker's log holds `text` after `marker` (it must keep running)."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited with {self.proc.returncode}:\n{self.tail()}")
            with open(self.log_file, "rb") as fh:
                fh.seek(marker)
                if text.encode() in fh.read():
                    return
            time.sleep(0.2)
        raise TimeoutError(f"worker not {what} within {timeout}s:\n{self.tail()}")

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, no final commit (a crash)."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            stop_pid(self.proc.pid, timeout=15)
            self.proc.wait(5)

    def crashes(self) -> list[str]:
        """The agent crashes logged so far (Faust's "Crashed reason=" lines): each one
        dropped whatever its agent held, so a test of any input expects none."""
        if not self.log_file.exists():
            return []
        text = self.log_file.read_text(errors="replace")
        return [line[:300] for line in text.splitlines() if "Crashed reason=" in line]

    def tail(self, n: int = 60) -> str:
        if not self.log_file.exists():
            return ""
        lines = self.log_file.read_text(errors="replace").splitlines()
        return "\n".join(line[:300] for line in lines[-n:])
