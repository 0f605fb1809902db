"""The incidents routes in process: list, ack, resolve, mute, unmute, scoped to the caller.

The desk is the real `KafkaIncidentDesk` with its Kafka ends replaced: what it
would send is recorded and applied as the followed topic would (read-your-writes),
so the routes, the tenant scoping and the desk's view of the topics are held
without a broker; tests/test_incidents_feedback_worker.py runs the feedback
through a real worker.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from test_gateway_units import KEY, TENANT, StandIn
from test_incidents import EXC, finding

from loglytics.gateway.app import build_app
from loglytics.gateway.incidents import KafkaIncidentDesk
from loglytics.incidents.lifecycle import Lifecycle
from loglytics.incidents.state import TenantIncidents
from loglytics.kafka_clients import KafkaConnection
from loglytics.schemas import MAX_MUTE_SECONDS, Incident, IncidentFeedback
from loglytics.topics import FEEDBACK, INCIDENTS


class Desk(KafkaIncidentDesk):
    def __init__(self) -> None:
        super().__init__(KafkaConnection("127.0.0.1:1"))
        self.sent: list[IncidentFeedback] = []

    async def send(self, record: IncidentFeedback) -> None:
        self.sent.append(record)
        self.apply(FEEDBACK.name, record.to_bytes())


def incident(tenant: str, template: str) -> Incident:
    (opened,) = Lifecycle().absorb(TenantIncidents(), finding(0, template, EXC, tenant=tenant))
    return opened


@pytest.fixture
def desk() -> Desk:
    desk = Desk()
    for inc in (incident(TENANT, "npe"), incident("other", "secret")):
        desk.apply(INCIDENTS.name, inc.to_bytes())
    return desk


@pytest.fixture
async def http(desk: Desk) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build_app(StandIn(), incidents=desk))
    headers = {"Authorization": f"Bearer {KEY}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://t", headers=headers) as c:
        yield c


async def test_the_caller_sees_only_its_own_incidents(http: httpx.AsyncClient, desk: Desk) -> None:
    listed = (await http.get("/api/v1/incidents")).json()["incidents"]
    assert [(i["tenant"], i["template_ids"]) for i in listed] == [(TENANT, ["npe"])]
    assert (await http.get("/api/v1/incidents", params={"status": "resolved"})).json() == {
        "incidents": []
    }
    other = desk.incidents("other")[0].incident_id
    for path in (f"/api/v1/incidents/{other}/ack", f"/api/v1/incidents/{other}/resolve"):
        answer = await http.post(path)
        assert answer.status_code == 404 and answer.json()["code"] == "not_found"
    answer = await http.post("/api/v1/mutes", json={"incident_id": other, "reason": "expected"})
    assert answer.status_code == 404
    assert desk.sent == []
    assert (
        await http.get("/api/v1/incidents", headers={"Authorization": "Bearer x"})
    ).status_code == 401


async def test_ack_resolve_mute_unmute_write_the_feedback(
    http: httpx.AsyncClient, desk: Desk
) -> None:
    iid = desk.incidents(TENANT)[0].incident_id
    ack = await http.post(f"/api/v1/incidents/{iid}/ack")
    assert ack.status_code == 202 and ack.json()["feedback"]["action"] == "ack"
    resolved = await http.post(f"/api/v1/incidents/{iid}/resolve")
    assert resolved.status_code == 202
    muted = await http.post(
        "/api/v1/mutes",
        json={"incident_id": iid, "reason": "maintenance", "duration_seconds": 3600},
    )
    assert muted.status_code == 201
    mute = muted.json()
    assert (mute["template_ids"], mute["sources"], mute["reason"]) == (
        ["npe"],
        ["checkout"],
        "maintenance",
    )
    assert mute["until"] == pytest.approx(mute["created_at"] + 3600)
    assert [m.mute_id for m in desk.mutes(TENANT)] == [mute["mute_id"]]
    assert (await http.post("/api/v1/mutes", json={"reason": "expected"})).status_code == 400
    lifted = await http.delete(f"/api/v1/mutes/{mute['mute_id']}")
    assert lifted.status_code == 202 and lifted.json()["feedback"]["mute"]["active"] is False
    assert desk.mutes(TENANT) == []
    assert (await http.delete(f"/api/v1/mutes/{mute['mute_id']}")).status_code == 404
    assert [(r.tenant, r.action) for r in desk.sent] == [
        (TENANT, "ack"),
        (TENANT, "resolve"),
        (TENANT, "mute"),
        (TENANT, "unmute"),
    ]
    assert desk.sent[2].key == f"{TENANT}#mute#{mute['mute_id']}".encode() == desk.sent[3].key


@pytest.mark.parametrize("seconds", [MAX_MUTE_SECONDS + 1, 2.5e16, 0])
async def test_a_mute_duration_out_of_range_is_a_422_naming_the_field(
    http: httpx.AsyncClient, desk: Desk, seconds: float
) -> None:
    """A duration whose end no stored time can hold is refused, not sent to the worker."""
    iid = desk.incidents(TENANT)[0].incident_id
    answer = await http.post(
        "/api/v1/mutes",
        json={"incident_id": iid, "reason": "maintenance", "duration_seconds": seconds},
    )
    assert answer.status_code == 422 and answer.json()["field"] == "duration_seconds"
    assert desk.sent == []


async def test_without_a_desk_the_routes_say_so() -> None:
    transport = httpx.ASGITransport(app=build_app(StandIn()))
    headers = {"Authorization": f"Bearer {KEY}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://t", headers=headers) as c:
        assert (await c.get("/api/v1/incidents")).status_code == 404
