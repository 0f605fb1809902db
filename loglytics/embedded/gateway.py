"""Real `loglytics api` subprocesses against a stack: for tests and the demo."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from loglytics.embedded.ports import free_port
from loglytics.embedded.processes import spawn, stop_pid
from loglytics.embedded.stack import StackState


class GatewayProcess:
    """One gateway on a free loopback port, tied to its parent (it dies with it)."""

    def __init__(self, stack: StackState, workdir: Path, **env: str | float) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_file = workdir / f"gateway-{self.port}.log"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "API_"))},
            "KAFKA_BOOTSTRAP_SERVERS": stack.kafka,
            "API_HOST": "127.0.0.1",
            "API_PORT": str(self.port),
            "STATE_DIR": str(workdir / "gateway-state"),
            **{k.upper(): str(v) for k, v in env.items()},
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> None:
        """Start and wait until it serves `/openapi.json` (uvicorn serves after startup)."""
        proc = spawn(
            [sys.executable, "-m", "loglytics", "api"], self.log_file, tied=True, env=self.env
        )
        self.proc = proc
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"gateway exited with {proc.returncode}:\n{self.tail()}")
            try:
                if httpx.get(f"{self.base}/openapi.json", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise TimeoutError(f"gateway not ready within {timeout}s:\n{self.tail()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            stop_pid(self.proc.pid, timeout=15)
            self.proc.wait(5)

    def tail(self, n: int = 40) -> str:
        if not self.log_file.exists():
            return ""
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-n:])
