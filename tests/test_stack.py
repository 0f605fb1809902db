"""`loglytics stack up|status|down` as a user runs it, and what listens where."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import orjson

from loglytics.embedded.processes import alive
from loglytics.embedded.stack import StackState
from loglytics.embedded.worker import WorkerProcess


def _cli(
    args: list[str], env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "loglytics", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _listening(pid: int) -> list[str]:
    """Local addresses of the TCP sockets a process listens on (from `ss`)."""
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
    return [line.split()[3] for line in out.splitlines() if f"pid={pid}," in line]


def test_stack_up_status_down_leaves_nothing(tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.endswith(("_BASE_URL", "_SERVERS"))},
        "STATE_DIR": str(tmp_path / "state"),
    }
    started = time.monotonic()
    up = _cli(["stack", "up"], env)
    elapsed = time.monotonic() - started
    state_file = tmp_path / "state" / "stack.json"
    try:
        assert up.returncode == 0, up.stderr
        assert elapsed < 30, f"stack up took {elapsed:.1f}s"
        state = orjson.loads(state_file.read_bytes())
        pids = state["pids"]
        assert set(pids) == {"kafka", "llamacpp"} and all(alive(p) for p in pids.values())
        for pid in pids.values():
            addrs = _listening(pid)
            assert addrs and all(a.startswith("127.0.0.1:") for a in addrs), addrs
        status = _cli(["stack", "status"], env)
        assert state["kafka"] in status.stdout and state["llamacpp"] in status.stdout
    finally:
        down = _cli(["stack", "down"], env)
    assert down.returncode == 0
    assert not state_file.exists()
    deadline = time.monotonic() + 10
    while any(alive(p) for p in pids.values()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(p) for p in pids.values())


def test_worker_listens_on_loopback_only(stack: StackState, tmp_path: Path) -> None:
    worker = WorkerProcess(stack, tmp_path)
    worker.start()
    try:
        assert worker.proc is not None
        addrs = _listening(worker.proc.pid)
        assert f"127.0.0.1:{worker.web_port}" in addrs
        assert all(a.startswith("127.0.0.1:") for a in addrs), addrs
    finally:
        worker.stop()


def test_bad_setting_fails_at_start_naming_the_variable(tmp_path: Path) -> None:
    env = {**os.environ, "STATE_DIR": str(tmp_path), "WINDOW_SECONDS": "soon"}
    result = _cli(["stack", "status"], env)
    assert result.returncode == 2
    assert "WINDOW_SECONDS" in result.stderr
