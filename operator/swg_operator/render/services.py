"""Services and PodDisruptionBudgets of the tenant's workloads."""

from __future__ import annotations

from typing import Any

from swg_operator import naming
from swg_operator.api.types import cidr_is_catch_all
from swg_operator.naming import Component
from swg_operator.render.access_tls import proxy_ports
from swg_operator.render.context import (
    ICAP_PORT,
    ICAP_PORT_NAME,
    LOGSTORE_HTTP_PORT,
    LOGSTORE_HTTP_PORT_NAME,
    LOGSTORE_INGEST_PORT,
    LOGSTORE_INGEST_PORT_NAME,
    Tenant,
    manifest,
)
from swg_operator.sizing_plan import WorkloadPlan


def _port(name: str, port: int) -> dict[str, Any]:
    return {"name": name, "port": port, "targetPort": name, "protocol": "TCP"}


def _service(
    tenant: Tenant, component: Component, ports: list[dict[str, Any]], **extra: Any
) -> dict[str, Any]:
    return manifest(
        "v1",
        "Service",
        tenant.metadata(naming.service_name(component), component=component),
        spec={"selector": tenant.selector(component), "ports": ports, **extra},
    )


def proxy_service(tenant: Tenant) -> dict[str, Any]:
    """Where clients connect. Exposed outside the cluster (settings.proxy_service_type), with
    externalTrafficPolicy Local: kube-proxy must not replace the client's address by a node's,
    or the NetworkPolicy on allowedCIDRs could not tell clients apart. The load balancer's own
    source ranges repeat allowedCIDRs as a first filter. Its ports: the plain proxy port while
    squid.conf opens it, and the TLS listener's (spec.access.tls); with the TLS listener alone
    the plain port stays only for the anti-virus pods' mirror, which the NetworkPolicy admits
    from those pods alone."""
    service_type = tenant.settings.proxy_service_type
    extra: dict[str, Any] = {"type": service_type}
    if service_type != "ClusterIP":
        extra["externalTrafficPolicy"] = "Local"
    cidrs = tenant.spec.clients.allowed_cidrs
    if service_type == "LoadBalancer" and not any(cidr_is_catch_all(c) for c in cidrs):
        extra["loadBalancerSourceRanges"] = list(cidrs)
    ports = [_port(name, port) for name, port in proxy_ports(tenant.spec, tenant.settings)]
    return _service(tenant, Component.PROXY, ports, **extra)


def antivirus_service(tenant: Tenant) -> dict[str, Any]:
    return _service(tenant, Component.ANTIVIRUS, [_port(ICAP_PORT_NAME, ICAP_PORT)])


def logstore_service(tenant: Tenant) -> dict[str, Any]:
    return _service(
        tenant,
        Component.LOGSTORE,
        [
            _port(LOGSTORE_HTTP_PORT_NAME, LOGSTORE_HTTP_PORT),
            _port(LOGSTORE_INGEST_PORT_NAME, LOGSTORE_INGEST_PORT),
        ],
    )


def disruption_budget(
    tenant: Tenant, component: Component, plan: WorkloadPlan
) -> dict[str, Any] | None:
    """maxUnavailable from the sizing plan (None: the workload has no budget). Unhealthy pods
    may always be evicted, so a crash-looping replica never blocks a node drain."""
    if plan.pdb_max_unavailable is None:
        return None
    return manifest(
        "policy/v1",
        "PodDisruptionBudget",
        tenant.metadata(naming.disruption_budget_name(component), component=component),
        spec={
            "maxUnavailable": plan.pdb_max_unavailable,
            "selector": {"matchLabels": tenant.selector(component)},
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
        },
    )
