"""The log shipper: a native sidecar (an init container that keeps running) in the proxy and
anti-virus pods. It reads the raw log files Squid and c-icap append to on the pod's state
emptyDir and posts the records to the log store's ingest port (swg_logstore).

A native sidecar starts before the daemons and is stopped after them, so it drains what they
wrote last; the pod's grace period leaves it `SHIPPER_DRAIN_SECONDS` for that.

The sidecar is rendered when the sizing plan of the workload has a container named `SHIPPER`:
its resources come from there, so the quota (which sums a pod's containers) covers it.
"""

from __future__ import annotations

from typing import Any, Final

from swg_logstore.formats import SHIPPER_STATE_DIR, SourceKind
from swg_operator.naming import Component, service_name
from swg_operator.render.context import LOGSTORE_INGEST_PORT, STATE_DIR, TMP_DIR, Tenant
from swg_operator.render.dataplane import sandbox_service_name
from swg_operator.render.pods import container_security_context, mount
from swg_operator.sizing_plan import SHIPPER, WorkloadPlan

# After the daemons exit: the shipper's quiet period (3 s) and the last batch's round trip.
SHIPPER_DRAIN_SECONDS: Final = 10


def shipper_sources(tenant: Tenant, component: Component) -> tuple[SourceKind, ...]:
    if component is Component.PROXY:
        # The sandbox log exists when squid.conf defines the sandbox service.
        if sandbox_service_name(tenant.spec) is not None:
            return (SourceKind.SQUID_ACCESS, SourceKind.SQUID_SANDBOX)
        return (SourceKind.SQUID_ACCESS,)
    return (SourceKind.CICAP_ANTIVIRUS,)


def shipper_sidecars(
    tenant: Tenant, component: Component, plan: WorkloadPlan
) -> list[dict[str, Any]]:
    """The pod's native sidecars: the shipper when the plan sizes one, else none."""
    if SHIPPER not in plan.containers:
        return []
    return [shipper_container(tenant, component, plan)]


def drain_seconds(sidecars: list[dict[str, Any]]) -> int:
    return SHIPPER_DRAIN_SECONDS if sidecars else 0


def shipper_container(tenant: Tenant, component: Component, plan: WorkloadPlan) -> dict[str, Any]:
    """The sidecar for `component`'s pod; it shares the pod's `state` and `tmp` volumes."""
    store = f"http://{service_name(Component.LOGSTORE)}:{LOGSTORE_INGEST_PORT}"
    sources = ",".join(kind.value for kind in shipper_sources(tenant, component))
    return {
        "name": SHIPPER,
        "image": tenant.settings.images.logstore,
        "imagePullPolicy": tenant.settings.images.pull_policy,
        "restartPolicy": "Always",
        "args": ["ship"],
        "env": [
            {"name": "SWG_TENANT", "value": tenant.name},  # named in its log lines
            {"name": "SWG_LOGSTORE_URL", "value": store},
            {"name": "SWG_SHIP_SOURCES", "value": sources},
            {"name": "SWG_SHIPPER_STATE_DIR", "value": SHIPPER_STATE_DIR},
        ],
        "resources": tenant.container_resources(plan, SHIPPER),
        "securityContext": container_security_context(),
        "volumeMounts": [mount("state", STATE_DIR), mount("tmp", TMP_DIR)],
    }
