"""Delivery of incident events: Prometheus Alertmanager's v2 API and a generic webhook.

Why here and how it never blocks detection: delivery runs in its own agent on
the `incidents` topic (see `agent`), never in the detection or lifecycle
agents, so a slow or absent receiver only delays deliveries.

* `AlertmanagerSink` posts open incidents as alerts (`POST /api/v2/alerts`)
  with labels `alertname`, `tenant`, `source`, `severity`, `incident_id` and
  annotations `title`, `summary`, and an `endsAt` `alert_ttl_s` ahead; the
  stage re-posts open incidents well before that lapses, and a resolved one is
  posted with `endsAt` at its resolution. Alertmanager then does routing,
  grouping, silences and receivers. A failed post is logged and left to the
  next re-post: alerts are state, not events.
* `WebhookSink` posts each event as JSON with its `event_id` (receivers
  dedupe on it), an `X-Loglytics-Signature: sha256=<hex>` HMAC of the body
  when a secret is set, and retries with capped exponential backoff for up to
  `give_up_after_s`; `deliver` returns False when that is spent, and the
  caller dead-letters the event. At-least-once: the agent commits an event's
  offset only after this returned.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson

from loglytics.schemas import Incident

log = logging.getLogger(__name__)

ALERTNAME = "LoglyticsIncident"
SIGNATURE_HEADER = "X-Loglytics-Signature"
EVENT_ID_HEADER = "X-Loglytics-Event-Id"


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).isoformat().replace("+00:00", "Z")


def alert_of(incident: Incident, *, now: float, alert_ttl_s: float) -> dict[str, Any]:
    """The Alertmanager v2 alert for an incident as of `now` (one label set per incident)."""
    ends = incident.resolved_at if incident.resolved_at is not None else now + alert_ttl_s
    return {
        "labels": {
            "alertname": ALERTNAME,
            "tenant": incident.tenant,
            "source": ",".join(incident.sources),
            "severity": incident.severity,
            "incident_id": incident.incident_id,
        },
        "annotations": {"title": incident.title, "summary": incident.summary},
        "startsAt": _iso(incident.opened_at),
        "endsAt": _iso(ends),
    }


class AlertmanagerSink:
    """Posts incidents to one Alertmanager (its base URL, e.g. http://alertmanager:9093)."""

    def __init__(
        self, base_url: str, client: httpx.AsyncClient, *, alert_ttl_s: float = 300.0
    ) -> None:
        self.url = base_url.rstrip("/") + "/api/v2/alerts"
        self.client = client
        self.alert_ttl_s = alert_ttl_s

    @property
    def repost_every_s(self) -> float:
        """Open alerts are re-posted at a third of their lifetime, so two posts may fail."""
        return self.alert_ttl_s / 3

    async def post(self, incidents: list[Incident]) -> bool:
        """One POST for all of them; False (logged) when Alertmanager did not take it."""
        if not incidents:
            return True
        now = time.time()
        body = [alert_of(i, now=now, alert_ttl_s=self.alert_ttl_s) for i in incidents]
        try:
            response = await self.client.post(self.url, json=body)
        except httpx.HTTPError as exc:
            log.warning("Alertmanager post failed: %r", exc)
            return False
        if response.status_code >= 300:
            log.warning("Alertmanager refused alerts: %s %s", response.status_code, response.text)
            return False
        return True


def signature(secret: str, body: bytes) -> str:
    """The signature header's value: HMAC-SHA256 of the exact body bytes."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook_body(incident: Incident) -> bytes:
    return orjson.dumps({"event_id": incident.event_id, "incident": incident.to_json()})


class WebhookSink:
    """Posts every incident event to one URL, at least once, with retries and backoff."""

    def __init__(
        self,
        url: str,
        client: httpx.AsyncClient,
        *,
        secret: str = "",
        retry_base_s: float = 0.5,
        retry_max_s: float = 10.0,
        give_up_after_s: float = 300.0,
    ) -> None:
        self.url = url
        self.client = client
        self.secret = secret
        self.retry_base_s = retry_base_s
        self.retry_max_s = retry_max_s
        self.give_up_after_s = give_up_after_s

    async def deliver(self, incident: Incident) -> bool:
        """True once the receiver answered 2xx; False when the retries are spent."""
        body = webhook_body(incident)
        headers = {"Content-Type": "application/json", EVENT_ID_HEADER: incident.event_id}
        if self.secret:
            headers[SIGNATURE_HEADER] = signature(self.secret, body)
        deadline = time.monotonic() + self.give_up_after_s
        delay = self.retry_base_s
        while True:
            try:
                response = await self.client.post(self.url, content=body, headers=headers)
                if 200 <= response.status_code < 300:
                    return True
                problem = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                problem = repr(exc)
            if time.monotonic() + delay > deadline:
                log.warning("webhook gave up on %s: %s", incident.event_id, problem)
                return False
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.retry_max_s)
