"""The tenant's Namespace and ServiceAccounts."""

from __future__ import annotations

from typing import Any, Final

from swg_operator import naming
from swg_operator.naming import Component
from swg_operator.render.context import Tenant, manifest

POD_SECURITY_LEVEL: Final = "restricted"
# "latest": every pod we render passes the newest restricted profile (e2e proves it on the
# current API server), and a tenant never runs under a weaker profile than the cluster knows.
POD_SECURITY_VERSION: Final = "latest"

DISPLAY_NAME_ANNOTATION: Final = "swg.dev/display-name"


def pod_security_labels() -> dict[str, str]:
    out: dict[str, str] = {}
    for mode in ("enforce", "audit", "warn"):
        out[f"pod-security.kubernetes.io/{mode}"] = POD_SECURITY_LEVEL
        out[f"pod-security.kubernetes.io/{mode}-version"] = POD_SECURITY_VERSION
    return out


def namespace(tenant: Tenant) -> dict[str, Any]:
    """The tenant namespace. No ownerReference to the SecureWebGateway: deleting the resource
    (or reinstalling the CRD) must never garbage-collect a customer's logs; the purge is the
    operator's explicit act."""
    metadata: dict[str, Any] = {
        "name": tenant.namespace,
        "labels": {**tenant.labels(), **pod_security_labels()},
    }
    if tenant.spec.display_name:
        metadata["annotations"] = {DISPLAY_NAME_ANNOTATION: tenant.spec.display_name}
    return manifest("v1", "Namespace", metadata)


def _service_account(tenant: Tenant, name: str, component: Component | None) -> dict[str, Any]:
    return manifest(
        "v1",
        "ServiceAccount",
        tenant.metadata(name, component=component),
        automountServiceAccountToken=False,
    )


def service_accounts(tenant: Tenant, components: tuple[Component, ...]) -> list[dict[str, Any]]:
    """One ServiceAccount per workload, and the namespace's `default` one, none of which gets a
    token mounted: no tenant pod talks to the API server."""
    accounts = [_service_account(tenant, "default", None)]
    accounts += [_service_account(tenant, naming.service_account_name(c), c) for c in components]
    return accounts
