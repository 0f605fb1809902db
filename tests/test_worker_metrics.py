"""The worker dashboard against a real Prometheus scraping a real worker.

Debian's `prometheus` (installed by `make test` when missing) runs on a free
loopback port with a scrape config written here; a worker runs a short stream
(good lines, error lines that make findings, one undecodable message that is
dead-lettered), and every PromQL expression of the worker dashboard must
return data, with Grafana's `$__rate_interval` expanded as Grafana would.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from kafka_io import produce

from loglytics.embedded.ports import free_port, wait_tcp
from loglytics.embedded.stack import StackState
from loglytics.embedded.worker import WorkerProcess
from loglytics.schemas import LogBatch

ROOT = Path(__file__).resolve().parent.parent
WORKER_DASHBOARD = ROOT / "deploy" / "grafana" / "provisioning" / "dashboards" / "worker.json"
SCRAPE_SECONDS = 1
RATE_INTERVAL = "15s"  # Grafana: max(4 x scrape interval, the step); 1 s scrapes here
TENANT = "metrics-tenant"


def dashboard_queries() -> list[tuple[str, str]]:
    doc = json.loads(WORKER_DASHBOARD.read_text())
    return [
        (panel["title"], target["expr"])
        for panel in doc["panels"]
        for target in panel["targets"]
        if target["datasource"]["type"] == "prometheus"
    ]


def _lines(start: float) -> list[str]:
    out = []
    for i in range(12):
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(start + i * 0.5))
        level, text = ("ERROR", "Connection to db-1 refused") if i > 8 else ("INFO", f"req {i}")
        out.append(f"{stamp},000 {level} [main] com.shop.Api: {text}")
    return out


def _query(port: int, expr: str) -> list[Any]:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=5) as resp:
        body = json.loads(resp.read())
    assert body["status"] == "success", body
    return list(body["data"]["result"])


def _prometheus(tmp: Path, target_port: int) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    config = tmp / "prometheus.yml"
    config.write_text(
        f"global:\n  scrape_interval: {SCRAPE_SECONDS}s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: loglytics-worker\n"
        f"    static_configs:\n      - targets: ['127.0.0.1:{target_port}']\n"
    )
    proc = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=(tmp / "prometheus.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    wait_tcp("127.0.0.1", port, 30, "Prometheus")
    return proc, port


@pytest.mark.skipif(shutil.which("prometheus") is None, reason="Debian's prometheus missing")
def test_every_worker_panel_returns_data(stack: StackState, tmp_path: Path) -> None:
    worker = WorkerProcess(
        stack, tmp_path, window_seconds=10, allowed_lateness_seconds=0, window_idle_close_seconds=2
    )
    worker.start(timeout=90)
    prometheus, port = _prometheus(tmp_path, worker.web_port)
    try:
        t0 = (int(time.time() - 7200) // 60) * 60.0
        key = f"{TENANT}/api".encode()
        batches = [
            LogBatch(tenant=TENANT, source="api", lines=_lines(t0 + w * 10)) for w in range(4)
        ]
        messages = [(key, b.to_bytes(), None) for b in batches]
        messages.append((key, b"[1, 2]", None))  # a JSON array: dead-lettered by ingest
        asyncio.run(produce(stack.kafka, "logs.raw", messages))
        queries = dashboard_queries()
        assert len(queries) >= 10
        missing = dict(queries)
        deadline = time.monotonic() + 120
        while missing and time.monotonic() < deadline:
            for title, expr in list(missing.items()):
                if _query(port, expr.replace("$__rate_interval", RATE_INTERVAL)):
                    del missing[title]
            time.sleep(1)
        assert not missing, f"panels without data: {sorted(missing)}\n{worker.tail(20)}"
    finally:
        prometheus.terminate()
        prometheus.wait(10)
        worker.stop()
