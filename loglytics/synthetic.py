"""Realistic synthetic log traffic for the demo, benchmarks and tests.

Several services in several formats (log4j/Java, Python logging, Apache
error log, syslog, JSON lines), deterministic given a seed, with incidents
that can be switched on for a time range: a database outage (a burst of
connection errors), a latency spike, a new exception after a deploy, and a
slow memory leak in a numeric field. A cause that stops leaves the service
healthy again (the leaking service is restarted: its heap is back where it
started), so that what it caused can end.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import orjson

INCIDENTS = ("db_outage", "latency_spike", "new_exception", "memory_leak")

_USERS = ("alice", "bob", "carol", "dave", "erin", "frank")
_PATHS = ("/api/orders", "/api/users", "/api/cart", "/api/search", "/healthz", "/api/payments")


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts)) + f",{round(ts * 1000) % 1000:03d}"


def _iso_t(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{round(ts * 1000) % 1000:03d}Z"


def _syslog(ts: float) -> str:
    """RFC 3164 stamp: the day of the month is space-padded, the hour zero-padded."""
    t = time.gmtime(ts)
    return f"{time.strftime('%b', t)} {t.tm_mday:2d} {time.strftime('%H:%M:%S', t)}"


def _apache(ts: float) -> str:
    return time.strftime("%a %b %d %H:%M:%S %Y", time.gmtime(ts))


@dataclass
class ServiceModel:
    """State of one simulated service: what it logs and how incidents change it."""

    name: str
    fmt: str
    rng: random.Random
    heap_mb: float = 512.0
    healthy_heap_mb: float = 512.0
    # Fast enough that a window holding the last six seconds of the leak already shows it
    # (its mean heap 5% above the reference), so "found within two windows" holds wherever
    # the leak starts within a window: at 2 MB it took eight seconds, and a leak starting
    # two seconds into a window was seen only when the next window closed, after 20 s.
    leak_mb_per_line: float = 4.0
    active: set[str] = field(default_factory=set)

    def set_active(self, incidents: set[str]) -> None:
        """Switch incidents on and off; a leak that stops is a restart (heap back to healthy)."""
        if "memory_leak" in self.active and "memory_leak" not in incidents:
            self.heap_mb = self.healthy_heap_mb
        self.active = incidents

    def line(self, ts: float) -> str:
        r = self.rng
        active = self.active
        if "db_outage" in active and r.random() < 0.6:
            return self._fmt(
                ts,
                "ERROR",
                "db.pool",
                f"Connection to database orders-db:5432 refused after {r.randint(1, 5)} retries "
                f"(pool active={r.randint(18, 20)} idle=0)",
            )
        if "new_exception" in active and r.random() < 0.15:
            return self._fmt(
                ts,
                "ERROR",
                "checkout.service",
                "Unhandled NullPointerException in CheckoutController.applyCoupon "
                f"(order={r.randint(10000, 99999)}) after deploy v2.14.0",
            )
        roll = r.random()
        if roll < 0.55:
            latency = r.gauss(45, 8) if "latency_spike" not in active else r.gauss(2400, 300)
            return self._fmt(
                ts,
                "INFO",
                "http.access",
                f"GET {r.choice(_PATHS)} status=200 latency_ms={max(1, int(latency))} "
                f"user={r.choice(_USERS)}",
            )
        if roll < 0.75:
            return self._fmt(
                ts,
                "INFO",
                "jobs.worker",
                f"Processed batch {r.randint(1, 10**6)} with {r.randint(10, 500)} items "
                f"in {r.randint(5, 80)} ms",
            )
        if roll < 0.85:
            if "memory_leak" in active:
                self.heap_mb += self.leak_mb_per_line
            return self._fmt(
                ts,
                "INFO",
                "runtime.gc",
                f"GC pause {r.randint(2, 30)} ms "
                f"heap_used_mb={int(self.heap_mb + r.uniform(-8, 8))}",
            )
        if roll < 0.93:
            return self._fmt(
                ts,
                "DEBUG",
                "cache",
                f"cache hit ratio {r.uniform(0.80, 0.99):.2f} for {r.choice(_PATHS)}",
            )
        if roll < 0.985:
            return self._fmt(
                ts,
                "WARN",
                "http.client",
                f"Retrying request to inventory-svc attempt {r.randint(1, 3)} "
                f"after timeout of {r.randint(500, 2000)} ms",
            )
        return self._fmt(
            ts,
            "ERROR",
            "payments",
            f"Payment declined for order {r.randint(10000, 99999)}: card expired",
        )

    def _fmt(self, ts: float, level: str, component: str, message: str) -> str:
        if self.fmt == "log4j":
            return f"{_iso(ts)} {level} [main] com.shop.{component}: {message}"
        if self.fmt == "python":
            return f"{_iso(ts)} - {component} - {level} - {message}"
        if self.fmt == "json":
            return orjson.dumps(
                {"timestamp": _iso_t(ts), "level": level, "logger": component, "message": message}
            ).decode()
        if self.fmt == "syslog":
            # RFC 3164 with a PRI: facility user (1), severity err/warning/info/debug.
            pri = 8 + {"WARN": 4, "ERROR": 3, "DEBUG": 7}.get(level, 6)
            return f"<{pri}>{_syslog(ts)} web01 {component}[{1000 + len(component)}]: {message}"
        # apache error log
        lvl = {"WARN": "warn", "ERROR": "error", "DEBUG": "debug", "INFO": "notice"}[level]
        return f"[{_apache(ts)}] [{lvl}] {message}"


FORMATS = ("log4j", "python", "json", "syslog", "apache")


def service_models(names: list[tuple[str, str]], seed: int = 7) -> dict[str, ServiceModel]:
    return {name: ServiceModel(name, fmt, random.Random(f"{seed}/{name}")) for name, fmt in names}


def mixed_lines(
    count: int, start_ts: float, rate_per_s: float, seed: int = 1
) -> Iterator[tuple[str, str]]:
    """(source, line) pairs in event-time order across all formats: for benchmarks."""
    models = service_models([(f"svc-{fmt}", fmt) for fmt in FORMATS], seed)
    names = list(models)
    rng = random.Random(seed)
    for i in range(count):
        name = names[rng.randrange(len(names))]
        yield name, models[name].line(line_ts(start_ts, i, rate_per_s))


def line_ts(start_ts: float, index: int, rate_per_s: float) -> float:
    """Event time of the index-th line: whole milliseconds, so every format renders it exactly."""
    return round(start_ts + index / rate_per_s, 3)


@dataclass(frozen=True)
class Incident:
    """An incident switched on for one tenant's service between two offsets (seconds)."""

    name: str
    tenant: str
    source: str
    start: float
    end: float


@dataclass(frozen=True)
class Service:
    tenant: str
    source: str
    fmt: str


@dataclass
class Scenario:
    """A multi-tenant, multi-service stream with incidents on a schedule."""

    services: list[Service]
    incidents: list[Incident]
    lines_per_second: float = 40.0
    seed: int = 11
    models: dict[tuple[str, str], ServiceModel] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for svc in self.services:
            self.models[(svc.tenant, svc.source)] = ServiceModel(
                svc.source, svc.fmt, random.Random(f"{self.seed}/{svc.tenant}/{svc.source}")
            )

    def tick(self, elapsed: float, now: float, dt: float) -> dict[tuple[str, str], list[str]]:
        """The lines each service writes during `dt` seconds ending at wall time `now`."""
        out: dict[tuple[str, str], list[str]] = {}
        count = max(1, round(self.lines_per_second * dt))
        for key, model in self.models.items():
            model.set_active(
                {
                    i.name
                    for i in self.incidents
                    if (i.tenant, i.source) == key and i.start <= elapsed < i.end
                }
            )
            step = dt / count
            out[key] = [model.line(now - dt + (j + 1) * step) for j in range(count)]
        return out


def demo_scenario(duration: float, window: float, quiet_windows: int = 3) -> Scenario:
    """Two tenants (free and pro), five services, four incidents after the baselines settle.

    Every cause stops `quiet_windows` + 1 windows before the traffic does, so an
    incident resolving after that many quiet windows (INCIDENT_RESOLVE_WINDOWS)
    resolves about when the traffic ends, while healthy traffic still flows.
    """
    services = [
        Service("acme", "web", "python"),
        Service("acme", "jobs", "json"),
        Service("acme", "edge", "apache"),
        Service("globex", "orders-api", "log4j"),
        Service("globex", "checkout", "syslog"),
    ]
    warm = max(8 * window, 0.25 * duration)  # baselines of numeric variables need 8 windows
    stop = duration - (quiet_windows + 1) * window
    span = max(stop - warm, 4 * window)
    incidents = [
        Incident("db_outage", "globex", "orders-api", warm, warm + 2 * window),
        Incident("latency_spike", "acme", "web", warm + 0.3 * span, warm + 0.3 * span + 2 * window),
        Incident("new_exception", "globex", "checkout", warm + 0.4 * span, warm + span),
        Incident("memory_leak", "acme", "jobs", warm + 0.5 * span, warm + span),
    ]
    return Scenario(services, incidents)
