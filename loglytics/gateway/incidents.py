"""Incidents over HTTP: list them, ack, resolve, mute and unmute, scoped to the caller's tenant.

Why the gateway follows the topics itself (as it does `tenants`): it needs no
ClickHouse and no worker for a read, and replicas share nothing. `KafkaIncidentDesk`
reads `incidents` (each incident's latest version) and `incident-feedback` (each
mute's latest state) from the beginning at start and follows them; feedback is
written to `incident-feedback` with the tenant partitioner, exactly as
`loglytics incidents` writes it, and the worker's incidents stage applies it.
A caller only ever sees, acknowledges, resolves or unmutes what belongs to its
own tenant: another tenant's incident or mute id answers 404, as an unknown one.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal, Protocol

from aiokafka import AIOKafkaProducer
from fastapi import APIRouter, Request
from fastapi import status as http
from pydantic import BaseModel, Field

from loglytics.follower import TopicFollower
from loglytics.gateway.calls import CallerDep
from loglytics.gateway.errors import ApiError
from loglytics.gateway.routes import errors
from loglytics.kafka_clients import KafkaConnection
from loglytics.partitioning import tenant_partitioner
from loglytics.schemas import (
    MAX_MUTE_SECONDS,
    DecodeError,
    FeedbackAction,
    Incident,
    IncidentFeedback,
    Mute,
    MuteReason,
    mute_id,
)
from loglytics.topics import FEEDBACK, INCIDENTS

READ_ERRORS = errors(401, 404, 500)
WRITE_ERRORS = errors(400, 401, 404, 413, 422, 500)


class IncidentDesk(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def incidents(self, tenant: str) -> list[Incident]: ...

    def mutes(self, tenant: str) -> list[Mute]: ...

    async def send(self, record: IncidentFeedback) -> None: ...


class KafkaIncidentDesk:
    """The tenants' incidents and mutes, kept current from the topics; feedback out."""

    def __init__(self, kafka: KafkaConnection, *, partitions: int = 4) -> None:
        self.kafka = kafka
        self.partitions = partitions
        self._incidents: dict[str, dict[str, Incident]] = {}
        self._mutes: dict[str, dict[str, Mute]] = {}
        self._producer: AIOKafkaProducer | None = None
        self._follower = TopicFollower(
            kafka,
            (INCIDENTS.name, FEEDBACK.name),
            self._apply_record,
            name="incident-desk",
            partitions=partitions,
        )

    def incidents(self, tenant: str) -> list[Incident]:
        return sorted(self._incidents.get(tenant, {}).values(), key=lambda i: -i.opened_at)

    def mutes(self, tenant: str) -> list[Mute]:
        return list(self._mutes.get(tenant, {}).values())

    def apply(self, topic: str, value: bytes | None) -> None:
        try:
            if topic == INCIDENTS.name:
                inc = Incident.from_bytes(value or b"")
                held = self._incidents.setdefault(inc.tenant, {})
                if inc.incident_id not in held or inc.version >= held[inc.incident_id].version:
                    held[inc.incident_id] = inc
                return
            mute = IncidentFeedback.from_bytes(value or b"").mute
        except DecodeError:
            return
        if mute is not None:
            mutes = self._mutes.setdefault(mute.tenant, {})
            if mute.active:
                mutes[mute.mute_id] = mute
            else:
                mutes.pop(mute.mute_id, None)

    def _apply_record(self, topic: str, key: bytes | None, value: bytes | None) -> None:
        self.apply(topic, value)

    async def start(self) -> None:
        """Read both topics to their current end, then follow them."""
        await self._follower.start()
        try:
            self._producer = self.kafka.producer(partitioner=tenant_partitioner)
            await self._producer.start()
        except BaseException:
            await self._follower.stop()
            raise

    async def send(self, record: IncidentFeedback) -> None:
        if self._producer is None:
            raise RuntimeError("the incident desk is not started")
        await self._producer.send_and_wait(FEEDBACK.name, key=record.key, value=record.to_bytes())
        self.apply(FEEDBACK.name, record.to_bytes())  # read-your-writes for the next call

    async def stop(self) -> None:
        await self._follower.stop()
        if self._producer is not None:
            await self._producer.stop()
        self._producer = None


class IncidentList(BaseModel):
    incidents: list[Incident]


Name = Annotated[str, Field(min_length=1, max_length=128)]


class MuteRequest(BaseModel):
    """A pattern to mute: template ids, or an incident's signature (its templates, on its
    sources unless `sources` says otherwise); for `duration_seconds`, or until unmuted."""

    template_ids: list[Name] = Field(default_factory=list, max_length=256)
    incident_id: Name | None = None
    sources: list[Name] = Field(default_factory=list, max_length=64)
    reason: MuteReason
    duration_seconds: float | None = Field(None, gt=0, le=MAX_MUTE_SECONDS)


class FeedbackAccepted(BaseModel):
    """The feedback as written to `incident-feedback`; the worker applies it shortly."""

    feedback: IncidentFeedback


def desk_of(request: Request) -> IncidentDesk:
    desk: IncidentDesk | None = getattr(request.app.state, "incidents", None)
    if desk is None:
        raise ApiError("not_found", "this gateway does not serve incidents")
    return desk


def _incident(desk: IncidentDesk, tenant: str, incident_id: str) -> Incident:
    found = next((i for i in desk.incidents(tenant) if i.incident_id == incident_id), None)
    if found is None:
        raise ApiError("not_found", f"no incident {incident_id!r}")
    return found


router = APIRouter(tags=["incidents"])
Status = Literal["open", "resolved", "all"]


@router.get("/api/v1/incidents", response_model=IncidentList, responses=READ_ERRORS)
async def list_incidents(
    who: CallerDep, request: Request, status: Status = "open"
) -> dict[str, Any]:
    """The caller's incidents, newest first (open ones unless `status` says otherwise)."""
    shown = [i for i in desk_of(request).incidents(who.tenant) if status in ("all", i.status)]
    return {"incidents": shown}


async def _on_incident(
    action: FeedbackAction, incident_id: str, who: CallerDep, request: Request
) -> dict[str, Any]:
    desk = desk_of(request)
    _incident(desk, who.tenant, incident_id)
    record = IncidentFeedback(
        tenant=who.tenant, action=action, created_at=time.time(), incident_id=incident_id
    )
    await desk.send(record)
    return {"feedback": record}


@router.post(
    "/api/v1/incidents/{incident_id}/ack",
    status_code=http.HTTP_202_ACCEPTED,
    response_model=FeedbackAccepted,
    responses=WRITE_ERRORS,
)
async def ack_incident(incident_id: str, who: CallerDep, request: Request) -> dict[str, Any]:
    """Acknowledge an incident (an `updated` event with `acknowledged`)."""
    return await _on_incident("ack", incident_id, who, request)


@router.post(
    "/api/v1/incidents/{incident_id}/resolve",
    status_code=http.HTTP_202_ACCEPTED,
    response_model=FeedbackAccepted,
    responses=WRITE_ERRORS,
)
async def resolve_incident(incident_id: str, who: CallerDep, request: Request) -> dict[str, Any]:
    """Resolve an incident by hand (a `resolved` event with `resolved_by` "user")."""
    return await _on_incident("resolve", incident_id, who, request)


@router.post(
    "/api/v1/mutes",
    status_code=http.HTTP_201_CREATED,
    response_model=Mute,
    responses=WRITE_ERRORS,
)
async def mute(body: MuteRequest, who: CallerDep, request: Request) -> Mute:
    """Mute a pattern: its findings are stored flagged `muted`, open no incident, notify no one."""
    desk = desk_of(request)
    templates, sources = list(body.template_ids), list(body.sources)
    if body.incident_id:
        incident = _incident(desk, who.tenant, body.incident_id)
        templates += incident.template_ids
        sources = sources or list(incident.sources)
    if not templates:
        raise ApiError("invalid_input", "name template_ids or an incident_id", field="template_ids")
    now = time.time()
    made = Mute(
        mute_id=mute_id(who.tenant, templates, sources, now),
        tenant=who.tenant,
        template_ids=list(dict.fromkeys(templates)),
        sources=sources,
        incident_id=body.incident_id or "",
        reason=body.reason,
        created_at=now,
        until=now + body.duration_seconds if body.duration_seconds else None,
    )
    await desk.send(IncidentFeedback(tenant=who.tenant, action="mute", created_at=now, mute=made))
    return made


@router.delete(
    "/api/v1/mutes/{mute_id}",
    status_code=http.HTTP_202_ACCEPTED,
    response_model=FeedbackAccepted,
    responses=WRITE_ERRORS,
)
async def unmute(mute_id: str, who: CallerDep, request: Request) -> dict[str, Any]:
    """Lift a mute: the pattern's findings open incidents again."""
    desk = desk_of(request)
    held = next((m for m in desk.mutes(who.tenant) if m.mute_id == mute_id), None)
    if held is None:
        raise ApiError("not_found", f"no mute {mute_id!r}")
    now = time.time()
    lifted = held.model_copy(update={"active": False})
    record = IncidentFeedback(tenant=who.tenant, action="unmute", created_at=now, mute=lifted)
    await desk.send(record)
    return {"feedback": record}
