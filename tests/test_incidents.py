"""Incidents in process: grouping, lifecycle, idempotence and the state codec (no services)."""

from __future__ import annotations

import asyncio

from kafka_io import delivered

from loglytics.incidents.lifecycle import Lifecycle
from loglytics.incidents.rules import dependency_names, families
from loglytics.incidents.stage import IncidentStage
from loglytics.incidents.state import TenantIncidents, dump_state, load_state
from loglytics.schemas import (
    Evidence,
    Finding,
    Incident,
    Severity,
    Signal,
    SignalKind,
    finding_id,
)

W = 10.0  # the demo's window length
T0 = 1_700_000_000.0
LAG = 3.0  # detection time after a window's end


def finding(
    window: int,
    template_id: str,
    template: str,
    kinds: tuple[SignalKind, ...] = ("error",),
    *,
    source: str = "checkout",
    tenant: str = "globex",
    severity: Severity = "high",
    exemplars: tuple[str, ...] = (),
    model_used: str = "rules",
    title: str = "",
) -> Finding:
    start = T0 + window * W
    what = f"{template_id}|{'+'.join(kinds)}"
    return Finding(
        finding_id=finding_id(tenant, source, start, "error", what),
        tenant=tenant,
        source=source,
        window_start=start,
        window_end=start + W,
        kind="error" if "error" in kinds else "anomaly",
        category="errors",
        severity=severity,
        title=title or f"Errors: {template}",
        summary=f"ERROR template seen 5x in {source}",
        evidence=Evidence(
            template_ids=[template_id],
            templates=[template],
            counts={template_id: 5},
            exemplars=list(exemplars),
            signals=[Signal(kind=k, template_id=template_id) for k in kinds],
        ),
        model_used=model_used,
        created_at=start + W + LAG,
    )


def run(lifecycle: Lifecycle, state: TenantIncidents, findings: list[Finding]) -> list[Incident]:
    events: list[Incident] = []
    for f in findings:
        events.extend(lifecycle.absorb(state, f))
    return events


EXC = (
    "Unhandled NullPointerException in CheckoutController.applyCoupon (order=<*>) after deploy <*>"
)


def test_an_exception_repeating_over_seven_windows_is_one_incident() -> None:
    state = TenantIncidents()
    events = run(Lifecycle(), state, [finding(w, "npe", EXC) for w in range(7)])
    assert [e.event for e in events] == ["opened"]
    (inc,) = state.open.values()
    assert inc.incident.findings_count == 7 and inc.incident.windows_count == 7
    assert inc.incident.last_window_end == T0 + 7 * W


def test_five_endpoints_latency_outliers_in_one_window_are_one_incident() -> None:
    state = TenantIncidents()
    outliers = [
        finding(
            3,
            f"lat{i}",
            f"GET /api/{path} status=<*> latency_ms=<*> user=<*>",
            ("numeric_outlier",),
            source="web",
            tenant="acme",
        )
        for i, path in enumerate(["orders", "cart", "login", "search", "items"])
    ]
    outliers.append(outliers[0].model_copy(update={"window_start": T0 + 4 * W}))
    events = run(Lifecycle(), state, outliers)
    assert [e.event for e in events] == ["opened", "updated", "updated", "updated", "updated"]
    (inc,) = state.open.values()
    assert len(inc.incident.template_ids) == 5
    assert inc.incident.sources == ["web"]


def test_a_value_far_out_and_a_value_rising_on_one_source_and_window_are_one_incident() -> None:
    """The demo's latency spike: five endpoints far outside their range, a sixth "rising"."""
    state = TenantIncidents()
    path = "GET /api/{} status=<*> latency_ms=<*> user=<*>"
    spike = [
        finding(3, "lat0", path.format("orders"), ("numeric_outlier",), source="web"),
        finding(3, "lat1", path.format("cart"), ("numeric_trend",), source="web"),
        finding(4, "lat2", path.format("users"), ("numeric_outlier",), source="web"),
    ]
    elsewhere = finding(
        3, "gc", "GC pause <*> ms heap_used_mb=<*>", ("numeric_trend",), source="jobs"
    )
    events = run(Lifecycle(), state, [*spike, elsewhere])
    assert [e.event for e in events] == ["opened", "updated", "updated", "opened"]
    assert [i.incident.sources for i in state.open.values()] == [["web"], ["jobs"]]


def test_a_database_outage_seen_by_two_sources_is_one_incident() -> None:
    state = TenantIncidents()
    orders = finding(
        2,
        "db1",
        "Connection to database <*> refused after <*> retries (pool active=<*> idle=<*>)",
        ("error", "error_burst"),
        source="orders-api",
        exemplars=("Connection to database orders-db:5432 refused after 3 retries",),
    )
    checkout = finding(
        2,
        "db2",
        "db error: could not connect to orders-db:5432 (timeout)",
        source="checkout",
    )
    events = run(Lifecycle(), state, [orders, checkout])
    assert [e.event for e in events] == ["opened", "updated"]
    assert events[-1].sources == ["orders-api", "checkout"]
    assert "orders-db" in dependency_names(orders) & dependency_names(checkout)


def test_unrelated_problems_of_one_tenant_stay_apart() -> None:
    state = TenantIncidents()
    db = finding(2, "db1", "Connection to database orders-db refused", source="orders-api")
    leak = finding(2, "gc", "GC pause <*> ms heap_used_mb=<*>", ("numeric_trend",), source="jobs")
    other = finding(2, "pay", "Payment declined for order <*>: card expired", source="checkout")
    events = run(Lifecycle(), state, [db, leak, other])
    assert [e.event for e in events] == ["opened", "opened", "opened"]
    assert families(leak) == {"resources"}


def test_resolution_after_k_quiet_windows_and_a_return_names_the_old_incident() -> None:
    lifecycle = Lifecycle(resolve_windows=3)
    state = TenantIncidents()
    first = run(lifecycle, state, [finding(w, "npe", EXC) for w in range(2)])
    (opened,) = first
    # Another source keeps the tenant's event clock moving; two quiet windows later: still open.
    noise = [finding(w, f"n{w}", f"other failure {w}", source=f"job{w}") for w in (3, 4)]
    assert [e.event for e in run(lifecycle, state, noise)] == ["opened", "opened"]
    assert opened.incident_id in state.open
    # The window ending K+1 windows after the last firing proves K quiet windows passed.
    events = run(lifecycle, state, [finding(5, "n5", "other failure 5", source="job5")])
    resolved = [e for e in events if e.incident_id == opened.incident_id]
    assert [e.event for e in resolved] == ["resolved"]
    assert resolved[0].status == "resolved" and resolved[0].version == 2
    assert resolved[0].resolved_at is not None and resolved[0].resolved_by == "quiet"
    back = run(lifecycle, state, [finding(9, "npe", EXC)])
    reopened = [e for e in back if e.event == "opened"]
    assert len(reopened) == 1
    assert reopened[0].incident_id != opened.incident_id
    assert reopened[0].previous_incident_id == opened.incident_id


def test_a_quiet_tenant_resolves_by_detection_time() -> None:
    lifecycle = Lifecycle(resolve_windows=3)
    state = TenantIncidents()
    (opened,) = run(lifecycle, state, [finding(0, "npe", EXC)])
    detected = opened.opened_at
    assert lifecycle.tick(state, detected + 3 * W) == []
    (resolved,) = lifecycle.tick(state, detected + 3.5 * W)
    assert resolved.event == "resolved" and not state.open
    assert lifecycle.tick(state, detected + 10 * W) == []


def test_a_verdict_update_opens_nothing_and_sends_an_event_only_when_severity_rises() -> None:
    lifecycle = Lifecycle()
    state = TenantIncidents()
    rules = finding(0, "npe", EXC, severity="high")
    same = rules.model_copy(
        update={"model_used": "smollm2", "summary": "The coupon code path crashes."}
    )
    assert [e.event for e in run(lifecycle, state, [rules])] == ["opened"]
    assert run(lifecycle, state, [same]) == []
    (inc,) = state.open.values()
    assert inc.incident.summary == "The coupon code path crashes."
    assert inc.incident.version == 1
    raised = same.model_copy(update={"severity": "critical"})
    (event,) = run(lifecycle, state, [raised])
    assert event.event == "updated" and event.severity == "critical" and event.version == 2
    assert len(state.open) == 1


def test_a_replay_creates_no_duplicate_event() -> None:
    lifecycle = Lifecycle()
    stream = [finding(w, "npe", EXC) for w in range(4)]
    stream += [finding(1, "db", "Connection to orders-db refused", source="orders-api")]
    state = TenantIncidents()
    first = run(lifecycle, state, stream)
    # A restart restores the table row; the findings are re-delivered.
    restored = load_state(dump_state(state))
    assert run(lifecycle, restored, stream) == []
    # A restart that lost the row re-derives the very same events (same ids, versions).
    again = run(lifecycle, TenantIncidents(), stream)
    assert [(e.event_id, e.event) for e in again] == [(e.event_id, e.event) for e in first]


def test_state_codec_round_trips_and_survives_garbage() -> None:
    lifecycle = Lifecycle()
    state = TenantIncidents()
    run(lifecycle, state, [finding(w, "npe", EXC) for w in range(3)])
    restored = load_state(dump_state(state))
    assert dump_state(restored) == dump_state(state)
    assert load_state(b"not json").open == {}
    assert load_state(None).open == {}


class Sent:
    """Stands in for the incidents topic: records what the stage sends."""

    def __init__(self) -> None:
        self.values: list[Incident] = []

    async def send(self, *, key: bytes, value: bytes) -> asyncio.Future[None]:
        incident = Incident.from_bytes(value)
        assert key == incident.tenant.encode()
        self.values.append(incident)
        return delivered()


async def test_the_stage_keeps_one_row_per_tenant_and_resolves_only_what_it_owns() -> None:
    table: dict[bytes, object] = {}
    out = Sent()
    stage = IncidentStage(
        Lifecycle(),
        table=table,
        incidents_out=out,  # type: ignore[arg-type]
        owns=lambda key: key.startswith(b"globex#"),
    )
    batch = [finding(w, "npe", EXC) for w in range(3)]
    batch.append(finding(0, "npe", EXC, tenant="acme"))
    sent = await stage.absorb(batch)
    assert [(e.tenant, e.event) for e in sent] == [("globex", "opened"), ("acme", "opened")]
    assert set(table) == {b"globex#incidents", b"acme#incidents"}
    assert await stage.absorb(batch) == []  # re-delivered: nothing new
    assert {i.tenant for i in stage.open_incidents()} == {"globex"}
    resolved = await stage.tick(batch[-1].created_at + 10 * W)
    assert [(e.tenant, e.event) for e in resolved] == [("globex", "resolved")]
    assert out.values == [*sent, *resolved]
