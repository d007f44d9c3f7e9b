"""The read-only Role of the tenant's admins and one RoleBinding per declared admin.

What the admins need, and nothing more: the state of their gateway's pods and workloads (and why
they are in it: events, pod output) and their logs, which they download from the log store
through the API server's service proxy, and the certificate of the HTTPS-inspection CA the
operator generated, to install on their clients (that one ConfigMap, by name). No Secrets (the
CA's key lives in the namespace), no other ConfigMap, no write verb, no exec or port-forward.
The SecureWebGateway resource itself is cluster-scoped and outside a namespaced Role.
"""

from __future__ import annotations

from typing import Any, Final

from swg_operator import naming
from swg_operator.naming import Component
from swg_operator.render.context import (
    LOGSTORE_HTTP_PORT_NAME,
    Tenant,
    generates_inspection_ca,
    manifest,
)

RBAC_API: Final = "rbac.authorization.k8s.io/v1"
READ: Final = ["get", "list", "watch"]


def log_export_proxy_names() -> list[str]:
    """The resource names a `services/proxy` request to the log store's HTTP port can carry:
    `/api/v1/namespaces/NS/services/[scheme:]NAME[:port]/proxy/...`."""
    service = naming.service_name(Component.LOGSTORE)
    port = LOGSTORE_HTTP_PORT_NAME
    return [service, f"{service}:{port}", f"http:{service}:", f"http:{service}:{port}"]


def reader_role(tenant: Tenant) -> dict[str, Any]:
    rules = [
        {
            "apiGroups": [""],
            "resources": ["pods", "services", "persistentvolumeclaims", "events"],
            "verbs": READ,
        },
        {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
        {"apiGroups": ["apps"], "resources": ["deployments", "replicasets"], "verbs": READ},
        {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": READ},
        {
            "apiGroups": [""],
            "resources": ["services/proxy"],
            "resourceNames": log_export_proxy_names(),
            "verbs": ["get"],
        },
    ]
    if generates_inspection_ca(tenant.spec):
        rules.append(
            {
                "apiGroups": [""],
                "resources": ["configmaps"],
                "resourceNames": [naming.inspection_ca_certificate_name()],
                "verbs": ["get"],
            }
        )
    return manifest(RBAC_API, "Role", tenant.metadata(naming.reader_role_name()), rules=rules)


def admin_bindings(tenant: Tenant) -> list[dict[str, Any]]:
    """One RoleBinding per declared admin (listed twice: bound once)."""
    role_ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role"}
    admins = {(admin.kind, admin.name): admin for admin in tenant.spec.admins}.values()
    return [
        manifest(
            RBAC_API,
            "RoleBinding",
            tenant.metadata(naming.admin_binding_name(admin.kind, admin.name)),
            roleRef={**role_ref, "name": naming.reader_role_name()},
            subjects=[
                {"apiGroup": "rbac.authorization.k8s.io", "kind": admin.kind, "name": admin.name}
            ],
        )
        for admin in admins
    ]
