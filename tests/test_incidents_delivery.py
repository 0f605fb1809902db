"""Delivery against real receivers: Debian's prometheus-alertmanager, and a local webhook.

The Alertmanager runs on a free loopback port with a config file and storage
the test writes, clustering off, tied to the test process and stopped by it.
`make test` installs the package when the binary is missing (as root).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from aiohttp import web
from test_incidents import EXC, W, finding, run

from loglytics.embedded.ports import free_port, wait_http_ok
from loglytics.embedded.processes import spawn, stop_pid
from loglytics.incidents.delivery import (
    ALERTNAME,
    EVENT_ID_HEADER,
    SIGNATURE_HEADER,
    AlertmanagerSink,
    WebhookSink,
)
from loglytics.incidents.lifecycle import Lifecycle
from loglytics.incidents.state import TenantIncidents
from loglytics.schemas import Incident

ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
CONFIG = """\
route:
  receiver: nobody
  group_wait: 1h
receivers:
  - name: nobody
"""


@pytest.fixture(scope="module")
def alertmanager_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if ALERTMANAGER is None:
        pytest.skip("install prometheus-alertmanager (apt-get install -y prometheus-alertmanager)")
    work: Path = tmp_path_factory.mktemp("alertmanager")
    (work / "alertmanager.yml").write_text(CONFIG)
    port = free_port()
    proc = spawn(
        [
            ALERTMANAGER,
            f"--config.file={work / 'alertmanager.yml'}",
            f"--storage.path={work / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        work / "alertmanager.log",
        tied=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http_ok(f"{url}/-/ready", 30, "alertmanager")
        yield url
    finally:
        stop_pid(proc.pid)
        proc.wait(10)


def incident_lifecycle() -> tuple[Incident, Incident]:
    """An incident opened (on two windows of an exception) and then resolved by quiet."""
    lifecycle = Lifecycle()
    state = TenantIncidents()
    (opened,) = run(lifecycle, state, [finding(w, "npe", EXC) for w in range(2)])
    opened = opened.model_copy(update={"opened_at": time.time() - 5})
    state.open[opened.incident_id].incident = opened
    (resolved,) = lifecycle.tick(state, time.time() + 10 * W)
    resolved = resolved.model_copy(update={"resolved_at": time.time() - 1})
    return opened, resolved


async def alerts(client: httpx.AsyncClient, url: str, incident_id: str) -> list[dict[str, Any]]:
    response = await client.get(f"{url}/api/v2/alerts", params={"active": "true"})
    response.raise_for_status()
    return [a for a in response.json() if a["labels"].get("incident_id") == incident_id]


async def test_an_open_incident_is_an_active_alert_until_resolved(alertmanager_url: str) -> None:
    opened, resolved = incident_lifecycle()
    async with httpx.AsyncClient(timeout=10) as client:
        sink = AlertmanagerSink(alertmanager_url, client)
        assert await sink.post([opened])
        (alert,) = await alerts(client, alertmanager_url, opened.incident_id)
        assert alert["status"]["state"] == "active"
        assert alert["labels"] == {
            "alertname": ALERTNAME,
            "tenant": "globex",
            "source": "checkout",
            "severity": "high",
            "incident_id": opened.incident_id,
        }
        assert alert["annotations"] == {"title": opened.title, "summary": opened.summary}
        # Re-posted while open, it stays one alert.
        assert await sink.post([opened])
        assert len(await alerts(client, alertmanager_url, opened.incident_id)) == 1
        assert await sink.post([resolved])
        assert await alerts(client, alertmanager_url, opened.incident_id) == []


async def test_alertmanager_down_is_a_logged_failure_not_an_exception() -> None:
    async with httpx.AsyncClient(timeout=2) as client:
        sink = AlertmanagerSink(f"http://127.0.0.1:{free_port()}", client)
        assert not await sink.post([incident_lifecycle()[0]])


class Receiver:
    """A webhook receiver that records every delivery (and checks each signature)."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.received: list[str] = []
        self.bad_signatures = 0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        expected = "sha256=" + hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
        if request.headers.get(SIGNATURE_HEADER) != expected:
            self.bad_signatures += 1
            return web.Response(status=401)
        event_id = orjson.loads(body)["event_id"]
        assert request.headers[EVENT_ID_HEADER] == event_id
        self.received.append(event_id)
        return web.Response(status=204)


@pytest.mark.slow
async def test_webhook_outage_loses_nothing_and_duplicates_nothing() -> None:
    """The receiver is down for 30 s, then up: every event arrives, none twice after dedup."""
    receiver_port = free_port()
    lifecycle = Lifecycle()
    state = TenantIncidents()
    stream = [finding(w, f"t{w % 3}", f"failure {w % 3}", source=f"s{w % 4}") for w in range(12)]
    events = run(lifecycle, state, stream) + lifecycle.tick(state, time.time() + 100 * W)
    assert len(events) >= 6
    receiver = Receiver("s3cret")
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    async with httpx.AsyncClient(timeout=2) as client:
        sink = WebhookSink(
            f"http://127.0.0.1:{receiver_port}/hook",
            client,
            secret="s3cret",
            retry_base_s=0.2,
            retry_max_s=2.0,
            give_up_after_s=120,
        )
        deliveries = [asyncio.create_task(sink.deliver(e)) for e in events]
        try:
            await asyncio.sleep(30)
            assert receiver.received == []
            site = web.TCPSite(runner, "127.0.0.1", receiver_port)
            await site.start()
            delivered = await asyncio.wait_for(asyncio.gather(*deliveries), 60)
        finally:
            for task in deliveries:
                task.cancel()
            await runner.cleanup()
    assert all(delivered)
    assert receiver.bad_signatures == 0
    assert sorted(set(receiver.received)) == sorted(e.event_id for e in events)
    assert len(set(receiver.received)) == len(events)


async def test_webhook_gives_up_when_retries_are_spent() -> None:
    async with httpx.AsyncClient(timeout=1) as client:
        sink = WebhookSink(
            f"http://127.0.0.1:{free_port()}/hook",
            client,
            retry_base_s=0.05,
            give_up_after_s=0.5,
        )
        started = time.monotonic()
        assert not await sink.deliver(incident_lifecycle()[0])
        assert time.monotonic() - started < 5
