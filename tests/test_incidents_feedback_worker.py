"""Feedback through a real worker, the real CLI and a real gateway: ack, resolve, mute, unmute.

Findings are produced straight onto `findings` (the incidents stage's input);
`loglytics incidents ...` runs as a subprocess against the embedded broker. After
a mute, a recurrence sends no incident event (nothing for Alertmanager or the
webhook to deliver) and is stored flagged `muted`; after the unmute the pattern
opens a new incident naming the old one. ClickHouse is read after the worker
stopped (chdb allows one process per data directory).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
from kafka_io import produce, read_all
from test_incidents import EXC
from test_requests_support import add_tenant
from worker_proc import WorkerProcess

from loglytics.embedded.gateway import GatewayProcess
from loglytics.embedded.ports import free_port
from loglytics.embedded.stack import StackState
from loglytics.schemas import (
    DeadLetter,
    Evidence,
    Finding,
    IncidentFeedback,
    Mute,
    Signal,
    finding_id,
)
from loglytics.storage.client import open_client

TENANT = "fbk"
W = 5.0


def _finding(window: int, now: float) -> Finding:
    start = float(int(now // W) * W) + window * W
    return Finding(
        finding_id=finding_id(TENANT, "checkout", start, "error", "npe"),
        tenant=TENANT,
        source="checkout",
        window_start=start,
        window_end=start + W,
        kind="error",
        category="errors",
        severity="high",
        title=f"Errors: {EXC}",
        summary="ERROR template seen 5x in checkout",
        evidence=Evidence(
            template_ids=["npe"],
            templates=[EXC],
            counts={"npe": 5},
            signals=[Signal(kind="error", template_id="npe")],
        ),
        created_at=time.time(),
    )


def cli(stack: StackState, *args: str) -> Any:
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": stack.kafka}
    done = subprocess.run(
        [sys.executable, "-m", "loglytics", "incidents", *args],
        env=env,
        capture_output=True,
        timeout=60,
        check=True,
    )
    return [orjson.loads(line) for line in done.stdout.splitlines() if line.strip()]


def wait_for(check: Any, what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := check():
            return found
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def events(stack: StackState) -> list[dict[str, Any]]:
    return [e for e in asyncio.run(read_all(stack.kafka, "incidents")) if e["tenant"] == TENANT]


def far_mute() -> bytes:
    """A mute whose end (year 785 million) no stored time holds: a stray producer's record."""
    mute = Mute(mute_id="far", tenant=TENANT, template_ids=["npe"], reason="expected", created_at=0)
    body = orjson.loads(
        IncidentFeedback(tenant=TENANT, action="mute", created_at=0, mute=mute).to_bytes()
    )
    body["mute"]["until"] = 2.5e16
    return orjson.dumps(body)


def letters_of(stack: StackState, original: bytes) -> list[DeadLetter]:
    """The dead letters of `original`: one per stage that read it (state and sink)."""
    found = [DeadLetter.from_obj(d) for d in asyncio.run(read_all(stack.kafka, "deadletter"))]
    mine = [d for d in found if d.original == original]
    return mine if {d.stage for d in mine} >= {"incidents", "sink.feedback"} else []


def send(stack: StackState, finding: Finding) -> None:
    asyncio.run(produce(stack.kafka, "findings", [(TENANT.encode(), finding.to_bytes(), None)]))


def over_http(stack: StackState, tmp_path: Path, iid: str) -> None:
    """The same incidents through a real gateway: listed, and acknowledged by the worker."""
    key = add_tenant(stack, TENANT)
    gateway = GatewayProcess(stack, tmp_path)
    gateway.start()
    try:
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=gateway.base, headers=headers, timeout=30) as http:
            listed = wait_for(
                lambda: http.get("/api/v1/incidents").json()["incidents"], "the listing"
            )
            assert [i["incident_id"] for i in listed] == [iid]
            assert http.post(f"/api/v1/incidents/{iid}/ack").status_code == 202
            wait_for(
                lambda: [e for e in events(stack) if e["incident_id"] == iid and e["acknowledged"]],
                "the ack over HTTP",
            )
    finally:
        gateway.stop()


def test_feedback_through_the_worker_and_the_cli(stack: StackState, tmp_path: Path) -> None:
    worker = WorkerProcess(
        stack,
        tmp_path,
        window_seconds=W,
        incident_resolve_windows=50,  # only people resolve here
        llamacpp_base_url=f"http://127.0.0.1:{free_port()}",
    )
    worker.start()
    now = time.time()
    try:
        send(stack, _finding(0, now))
        (opened,) = wait_for(lambda: events(stack), "the incident to open")
        iid = opened["incident_id"]
        far = far_mute()
        asyncio.run(produce(stack.kafka, "incident-feedback", [(b"fbk#mute#far", far, None)]))
        cli(stack, "ack", iid, "--tenant", TENANT, "--by", "oncall")
        wait_for(lambda: [e for e in events(stack) if e["acknowledged"]], "the ack")
        letters = wait_for(lambda: letters_of(stack, far), "the far mute's dead letters")
        assert all("until" in letter.reason for letter in letters)
        assert not worker.crashes(), "\n".join(worker.crashes()[:5])
        (muted,) = cli(stack, "mute", "--tenant", TENANT, "--incident", iid, "--reason", "expected")
        mute_id = muted["mute"]["mute_id"]
        assert muted["mute"]["template_ids"] == ["npe"]
        time.sleep(2.0)  # the mute is applied before the recurrence (one partition, in order)
        recurrence = _finding(1, now)
        send(stack, recurrence)

        def flagged() -> list[dict[str, Any]]:
            found = asyncio.run(read_all(stack.kafka, "findings"))
            return [f for f in found if f["finding_id"] == recurrence.finding_id and f["muted"]]

        wait_for(flagged, "the muted copy of the recurrence")
        assert [e["event"] for e in events(stack)] == ["opened", "updated"]  # no one notified
        cli(stack, "resolve", iid, "--tenant", TENANT)
        wait_for(lambda: [e for e in events(stack) if e["status"] == "resolved"], "the resolve")
        cli(stack, "unmute", mute_id, "--tenant", TENANT)
        time.sleep(2.0)
        send(stack, _finding(2, now))
        reopened = wait_for(
            lambda: [e for e in events(stack) if e["incident_id"] != iid], "a new incident"
        )
        assert reopened[0]["previous_incident_id"] == iid
        listed = cli(stack, "list", "--tenant", TENANT, "--json")
        assert [i["incident_id"] for i in listed] == [reopened[0]["incident_id"]]
        over_http(stack, tmp_path, reopened[0]["incident_id"])
        time.sleep(3.0)  # the sink's flush
    finally:
        worker.stop()
    client = open_client(f"chdb://{tmp_path / 'clickhouse'}")
    try:
        rows = client.query(
            "SELECT finding_id, muted FROM findings FINAL WHERE tenant = {t:String} "
            "ORDER BY window_start",
            parameters={"t": TENANT},
        ).result_rows
        actions = client.query(
            "SELECT action FROM incident_feedback FINAL WHERE tenant = {t:String} "
            "ORDER BY created_at",
            parameters={"t": TENANT},
        ).result_rows
    finally:
        client.close()
    assert [r[1] for r in rows] == [False, True, False]
    assert [r[0] for r in actions] == ["ack", "mute", "resolve", "unmute", "ack"]
