"""A private Prometheus Alertmanager on a loopback port: for the demo (and anyone local).

Why a process of its own rather than a fake: the demo shows that incidents
reach the receiver users of Prometheus already run, so it runs Debian's
`prometheus-alertmanager` (or an `alertmanager` on the PATH) with a config
file and storage written into the demo's work directory, clustering off,
tied to the demo's process. Its receiver sends nowhere: the alerts are only
read back through `GET /api/v2/alerts`.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx

from loglytics.embedded.ports import free_port, wait_http_ok
from loglytics.embedded.processes import spawn, stop_pid

BINARIES = ("prometheus-alertmanager", "alertmanager")
CONFIG = """\
route:
  receiver: nobody
  group_wait: 1h
receivers:
  - name: nobody
"""


def find_binary() -> str | None:
    """The Alertmanager binary on the PATH, if one is installed."""
    return next((path for name in BINARIES if (path := shutil.which(name))), None)


class AlertmanagerProcess:
    """One Alertmanager process under `workdir`, on a free loopback port."""

    def __init__(self, binary: str, workdir: Path) -> None:
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "alertmanager.yml"
        config.write_text(CONFIG)
        self.proc = spawn(
            [
                self.binary,
                f"--config.file={config}",
                f"--storage.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--cluster.listen-address=",
            ],
            self.workdir / "alertmanager.log",
            tied=True,
        )
        wait_http_ok(f"{self.url}/-/ready", timeout, "alertmanager")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            stop_pid(self.proc.pid)
            self.proc.wait(10)

    async def active_alerts(self, client: httpx.AsyncClient) -> list[dict[str, Any]]:
        """The alerts Alertmanager holds as active now (empty if it does not answer)."""
        try:
            response = await client.get(f"{self.url}/api/v2/alerts", params={"active": "true"})
            response.raise_for_status()
        except httpx.HTTPError:
            return []
        alerts = response.json()
        return [a for a in alerts if isinstance(a, dict)] if isinstance(alerts, list) else []
