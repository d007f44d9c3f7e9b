"""The kinds of object the operator reads and writes, and where each lives in the REST API.

A fixed table, not discovery: the operator owns a known set of kinds, and a kind the renderer
emits that is missing here is a bug that fails loudly (`UnknownKindError`), never a guess.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from swg_operator.api import API_VERSION, KIND, PLURAL


@dataclass(frozen=True)
class ResourceKind:
    api_version: str
    kind: str
    plural: str
    namespaced: bool

    def collection_path(self, namespace: str | None = None) -> str:
        """`/api/v1/namespaces/ns/configmaps`; all namespaces when `namespace` is None."""
        base = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        if self.namespaced and namespace is not None:
            return f"{base}/namespaces/{namespace}/{self.plural}"
        return f"{base}/{self.plural}"

    def object_path(self, name: str, namespace: str | None = None) -> str:
        if self.namespaced and not namespace:
            raise ValueError(f"{self.kind} {name} is namespaced: a namespace is required")
        return f"{self.collection_path(namespace if self.namespaced else None)}/{name}"


class UnknownKindError(LookupError):
    """An object of a kind the operator does not own reached the kube adapter (a bug)."""


NAMESPACE: Final = ResourceKind("v1", "Namespace", "namespaces", namespaced=False)
SERVICE_ACCOUNT: Final = ResourceKind("v1", "ServiceAccount", "serviceaccounts", namespaced=True)
CONFIG_MAP: Final = ResourceKind("v1", "ConfigMap", "configmaps", namespaced=True)
SECRET: Final = ResourceKind("v1", "Secret", "secrets", namespaced=True)
SERVICE: Final = ResourceKind("v1", "Service", "services", namespaced=True)
PVC: Final = ResourceKind("v1", "PersistentVolumeClaim", "persistentvolumeclaims", namespaced=True)
RESOURCE_QUOTA: Final = ResourceKind("v1", "ResourceQuota", "resourcequotas", namespaced=True)
LIMIT_RANGE: Final = ResourceKind("v1", "LimitRange", "limitranges", namespaced=True)
EVENT: Final = ResourceKind("v1", "Event", "events", namespaced=True)
DEPLOYMENT: Final = ResourceKind("apps/v1", "Deployment", "deployments", namespaced=True)
STATEFUL_SET: Final = ResourceKind("apps/v1", "StatefulSet", "statefulsets", namespaced=True)
NETWORK_POLICY: Final = ResourceKind(
    "networking.k8s.io/v1", "NetworkPolicy", "networkpolicies", namespaced=True
)
PDB: Final = ResourceKind(
    "policy/v1", "PodDisruptionBudget", "poddisruptionbudgets", namespaced=True
)
ROLE: Final = ResourceKind("rbac.authorization.k8s.io/v1", "Role", "roles", namespaced=True)
ROLE_BINDING: Final = ResourceKind(
    "rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings", namespaced=True
)
TENANT: Final = ResourceKind(API_VERSION, KIND, PLURAL, namespaced=False)
# Read by name to tell why the log volume's claim does not bind (reconcile.storage) and whether
# it keeps the volume in the tenant's region; listed to find the default (reconcile.region).
STORAGE_CLASS: Final = ResourceKind(
    "storage.k8s.io/v1", "StorageClass", "storageclasses", namespaced=False
)
# Listed by the region's label to tell whether spec.placement.region has a Ready node
# (reconcile.region).
NODE: Final = ResourceKind("v1", "Node", "nodes", namespaced=False)
# The log store claim's volume: read and its reclaim policy patched by the purge, nothing more.
PERSISTENT_VOLUME: Final = ResourceKind(
    "v1", "PersistentVolume", "persistentvolumes", namespaced=False
)

# Every kind a tenant's objects can have: observed (listed by label) on each reconcile so that
# what the desired state no longer contains can be pruned, watched for drift, and listed
# cluster-wide by the purge. Namespace first. Never Secret: listing or watching Secrets would
# read every Secret of the cluster (ISO/IEC 27017 15.1.1). The one Secret the operator writes
# (the generated HTTPS-inspection CA) is created once by name and goes with the namespace. Nor
# Role: tenants' admins are bound to a ClusterRole the chart ships; the Role older versions
# wrote (`naming.legacy_reader_role_name()`) is looked up and deleted by name (ROLE below).
OWNED_KINDS: Final[tuple[ResourceKind, ...]] = (
    NAMESPACE,
    SERVICE_ACCOUNT,
    CONFIG_MAP,
    SERVICE,
    PVC,
    RESOURCE_QUOTA,
    LIMIT_RANGE,
    DEPLOYMENT,
    STATEFUL_SET,
    NETWORK_POLICY,
    PDB,
    ROLE_BINDING,
)

_BY_TYPE: Final = {
    (k.api_version, k.kind): k
    for k in (*OWNED_KINDS, SECRET, ROLE, EVENT, TENANT, PERSISTENT_VOLUME)
}


def kind_of(obj: Mapping[str, Any]) -> ResourceKind:
    """The `ResourceKind` of a manifest, from its apiVersion and kind."""
    key = (str(obj.get("apiVersion", "")), str(obj.get("kind", "")))
    try:
        return _BY_TYPE[key]
    except KeyError:
        raise UnknownKindError(f"{key[1]} ({key[0]}) is not a kind the operator owns") from None
