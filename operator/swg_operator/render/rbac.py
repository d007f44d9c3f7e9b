"""The tenant admins' read-only rights: one ClusterRole for every tenant, bound per tenant.

What the admins need, and nothing more (ISO/IEC 27017 9.2.x: namespace-scoped read roles, logs
and status): the state of their gateway's pods and workloads (and why they are in it: events, pod
output); their logs, which they download from the log store through the API server's service
proxy; the tenant's status, which the operator mirrors into the ConfigMap `tenant-status` (the
`SecureWebGateway` itself is cluster-scoped and out of a namespaced grant's reach); their notices
(ConfigMap `tenant-notices`); and the certificate of the HTTPS-inspection CA the operator
generated, to install on their clients. No Secrets (the CA's key lives in the namespace), no
other ConfigMap, no write verb, no exec or port-forward.

The rules are the same in every tenant namespace (resource names are fixed names inside the
namespace), so they live in one ClusterRole the chart ships (`swg-tenant-reader`), and each
declared admin gets a RoleBinding to it in their tenant's namespace only. The operator writes no
Role: binding that one ClusterRole (`bind`, by name) is the whole of what it needs beyond its
own rights, where writing a Role that grants `pods/log` and `services/proxy` would need
`escalate`.
"""

from __future__ import annotations

from typing import Any, Final

from swg_operator import naming
from swg_operator.naming import Component
from swg_operator.render.context import LOGSTORE_HTTP_PORT_NAME, Tenant, manifest

RBAC_API: Final = "rbac.authorization.k8s.io/v1"
RBAC_GROUP: Final = "rbac.authorization.k8s.io"
READ: Final = ["get", "list", "watch"]


def log_export_proxy_names() -> list[str]:
    """The resource names a `services/proxy` request to the log store's HTTP port can carry:
    `/api/v1/namespaces/NS/services/[scheme:]NAME[:port]/proxy/...`."""
    service = naming.service_name(Component.LOGSTORE)
    port = LOGSTORE_HTTP_PORT_NAME
    return [service, f"{service}:{port}", f"http:{service}:", f"http:{service}:{port}"]


def reader_rules() -> list[dict[str, Any]]:
    """The rules of the tenant admins' ClusterRole (the chart's
    `templates/tenant-reader.yaml` holds the same, a test compares them)."""
    return [
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
        {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "resourceNames": [
                naming.tenant_status_name(),
                naming.inspection_ca_certificate_name(),
                naming.access_tls_certificate_name(),
                naming.notices_config_map_name(),
            ],
            "verbs": ["get"],
        },
    ]


def reader_cluster_role(labels: dict[str, str] | None = None) -> dict[str, Any]:
    """The ClusterRole as a manifest, for clusters without the chart (`make up`, tests)."""
    metadata: dict[str, Any] = {"name": naming.tenant_reader_cluster_role_name()}
    if labels:
        metadata["labels"] = dict(labels)
    return manifest(RBAC_API, "ClusterRole", metadata, rules=reader_rules())


def admin_bindings(tenant: Tenant) -> list[dict[str, Any]]:
    """One RoleBinding per declared admin (listed twice: bound once), in the tenant namespace,
    to the tenant admins' ClusterRole."""
    role_ref = {
        "apiGroup": RBAC_GROUP,
        "kind": "ClusterRole",
        "name": naming.tenant_reader_cluster_role_name(),
    }
    admins = {(admin.kind, admin.name): admin for admin in tenant.spec.admins}.values()
    return [
        manifest(
            RBAC_API,
            "RoleBinding",
            tenant.metadata(naming.admin_binding_name(admin.kind, admin.name)),
            roleRef=dict(role_ref),
            subjects=[{"apiGroup": RBAC_GROUP, "kind": admin.kind, "name": admin.name}],
        )
        for admin in admins
    ]
