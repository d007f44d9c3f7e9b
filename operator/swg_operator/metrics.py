"""The operator's Prometheus metrics and its HTTP endpoint (`/metrics`, `/healthz`, `/readyz`).

One registry for the whole process; the names carry the `swg_operator_` prefix. The liveness
endpoint `/healthz` answers 200 while the event loop turns (it is served from that loop), 503
otherwise; a standby is alive. The readiness endpoint `/readyz` answers 200 only while this
process reconciles (it leads, and kopf has started), 503 while it stands by: a standby is not
ready, and `swg_operator_leader` says which process leads.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Final

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

from swg_operator.api import Phase

logger = logging.getLogger(__name__)

RECONCILES: Final = Counter(
    "swg_operator_reconciles_total",
    "Reconciles of a tenant, by result (ok, invalid_spec, transient, error).",
    ["result"],
)
RECONCILE_SECONDS: Final = Histogram(
    "swg_operator_reconcile_duration_seconds",
    "Duration of one reconcile of a tenant, by result.",
    ["result"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
RECONCILE_ERRORS: Final = Counter(
    "swg_operator_reconcile_errors_total",
    "Reconciles that failed, by kind of error (invalid_spec, transient, bug).",
    ["kind"],
)
TENANTS_BY_PHASE: Final = Gauge(
    "swg_operator_tenants", "Tenants known to this operator, by phase.", ["phase"]
)
DRIFT_REPAIRS: Final = Counter(
    "swg_operator_drift_repairs_total",
    "Objects restored or reverted because they drifted from the desired state, by kind.",
    ["kind"],
)
CHILD_CHANGES: Final = Counter(
    "swg_operator_child_changes_total",
    "Objects the operator created, updated or pruned, by action.",
    ["action"],
)
PURGES_PENDING: Final = Gauge(
    "swg_operator_purges_pending", "Cancelled tenants waiting for their purge deadline."
)
PURGES_DONE: Final = Counter("swg_operator_purges_total", "Tenants purged (finalizer released).")
WATCH_EVENTS: Final = Counter(
    "swg_operator_watch_events_total",
    "Watch events of the owned kinds received by the operator's informers, by kind and type.",
    ["kind", "type"],
)
API_REQUESTS: Final = Counter(
    "swg_operator_api_requests_total",
    "Requests to the API server made by the operator's adapter, by verb and HTTP status.",
    ["verb", "code"],
)
CLOCK_SKEW: Final = Gauge(
    "swg_operator_clock_skew_seconds",
    "Local clock minus the API server's clock, measured at the last purge-deadline check.",
)
LEADER: Final = Gauge(
    "swg_operator_leader",
    "1 while this process leads (holds the leader Lease, or runs alone) and reconciles; 0 while "
    "it stands by.",
)

_phases: dict[str, str] = {}


def record_phase(tenant: str, phase: str | None) -> None:
    """Remember `tenant`'s phase (None: forget it) and refresh the tenants-by-phase gauge."""
    if phase is None:
        _phases.pop(tenant, None)
    else:
        _phases[tenant] = phase
    for label in Phase:
        TENANTS_BY_PHASE.labels(phase=label.value).set(
            sum(1 for value in _phases.values() if value == label.value)
        )


class Heartbeat:
    """The loop's pulse for the liveness probe: a task that ticks once a second."""

    def __init__(self, *, stale_after: float = 30.0) -> None:
        self.last = time.monotonic()
        self.stale_after = stale_after

    async def run(self) -> None:
        while True:
            self.last = time.monotonic()
            await asyncio.sleep(1.0)

    @property
    def alive(self) -> bool:
        return time.monotonic() - self.last < self.stale_after


async def serve(
    host: str, port: int, heartbeat: Heartbeat, ready: Callable[[], bool] = lambda: True
) -> web.AppRunner:
    """Start the HTTP endpoint on `host:port` inside the running loop; `ready()` decides
    `/readyz`."""

    async def metrics_page(_: web.Request) -> web.Response:
        body = generate_latest()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(_: web.Request) -> web.Response:
        if heartbeat.alive:
            return web.Response(text="ok\n")
        return web.Response(status=503, text="event loop stalled\n")

    async def readyz(_: web.Request) -> web.Response:
        if not heartbeat.alive:
            return web.Response(status=503, text="event loop stalled\n")
        if ready():
            return web.Response(text="ok: leading\n")
        return web.Response(status=503, text="standing by: another process leads\n")

    app = web.Application()
    app.router.add_get("/metrics", metrics_page)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    logger.info("Started the metrics endpoint on http://%s:%d/metrics", host, port)
    return runner
