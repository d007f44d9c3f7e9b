"""What a tenant's admins see of the operator's work, in their own namespace.

Their rights are namespace-scoped (`render.rbac`) and the `SecureWebGateway` is cluster-scoped,
so the operator brings into the tenant namespace:

* the status: ConfigMap `tenant-status` (`render.status_mirror`), applied like every other
  object, only when it differs from what is there (an idle tenant writes nothing);
* the change notices: each Event posted on the tenant (in `default`, where Events about a
  cluster-scoped object go) is posted again in the tenant namespace, about that ConfigMap, so
  `kubectl get events -n swg-<tenant>` shows them.

It also removes the Role older versions gave the admins (`tenant-reader`, replaced by a binding
to the chart's ClusterRole), looked up by name once per tenant and operator process.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from swg_operator.api import SecureWebGatewaySpec, SecureWebGatewayStatus
from swg_operator.kube import KubeApi
from swg_operator.kube.kinds import CONFIG_MAP, NAMESPACE, ROLE
from swg_operator.labels import selector_for, selector_string
from swg_operator.naming import legacy_reader_role_name, tenant_status_name
from swg_operator.reconcile.ownership import namespace_ready
from swg_operator.reconcile.plan import ObjectKey, Plan, key_of, plan_changes
from swg_operator.render.status_mirror import tenant_status_config_map


def mirror_key(namespace: str) -> ObjectKey:
    return ObjectKey(CONFIG_MAP.api_version, CONFIG_MAP.kind, namespace, tenant_status_name())


def split_mirror(
    observed: Iterable[Mapping[str, Any]], namespace: str
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The observed objects without the status mirror (the desired state never contains it:
    it is written after the status is known), and the mirror itself."""
    key = mirror_key(namespace)
    rest = [dict(o) for o in observed if key_of(o) != key]
    mirror = next((dict(o) for o in observed if key_of(o) == key), None)
    return rest, mirror


def mirror_plan(
    tenant: str,
    status: SecureWebGatewayStatus,
    *,
    service_code: str,
    spec: SecureWebGatewaySpec | None = None,
    observed: Mapping[str, Any] | None,
    applied: Mapping[ObjectKey, tuple[str, str]],
) -> Plan:
    """Apply the status mirror when it is missing or differs; nothing else, never a prune."""
    desired = tenant_status_config_map(tenant, status, service_code=service_code, spec=spec)
    return plan_changes([desired], [observed] if observed is not None else [], applied=applied)


async def observe_mirror(
    kube: KubeApi, tenant: str, namespace: str
) -> tuple[bool, dict[str, Any] | None]:
    """Whether the tenant namespace is there to write into, and the mirror found in it (for
    the reconciles that observe nothing else: an invalid spec, a bug)."""
    found = await kube.list_labelled(NAMESPACE, selector=selector_string(tenant))
    if not namespace_ready(found, namespace):
        return False, None
    return True, await kube.find_named(CONFIG_MAP, tenant_status_name(), namespace=namespace)


async def legacy_reader_role(kube: KubeApi, tenant: str, namespace: str) -> list[dict[str, Any]]:
    """The Role an older version wrote for the tenant's admins, when it is still there and
    labelled as the tenant's: to be pruned. A list with a field selector on its name, so the
    operator's `list` (and `delete`) on Roles are limited to that one name."""
    role = await kube.find_named(ROLE, legacy_reader_role_name(), namespace=namespace)
    if role is None:
        return []
    labels = role.get("metadata", {}).get("labels") or {}
    return [role] if selector_for(tenant).items() <= labels.items() else []


def notice_subject(namespace: str) -> dict[str, Any]:
    """What the change notices in the tenant namespace are about: the status mirror."""
    return {
        "apiVersion": CONFIG_MAP.api_version,
        "kind": CONFIG_MAP.kind,
        "metadata": {"name": tenant_status_name(), "namespace": namespace},
    }
