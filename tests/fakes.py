"""The fakes of the unit tests: the in-memory API server `FakeKube` (in `fake_apiserver`) and the
parts of the cluster's controllers a test plays by hand on it: `make_available` (Deployments
rolled out, claims bound), `bind_log_volume` (the provisioner) and `watch_cache` (a watch that is
never behind)."""

from __future__ import annotations

from typing import Any

from fake_apiserver import OWNED, FakeKube
from swg_operator.kube.cache import Packed, WatchCache, pack
from swg_operator.labels import MANAGED_BY, MANAGED_BY_KEY, TENANT_KEY

__all__ = ["FakeKube", "bind_log_volume", "make_available", "watch_cache"]


def watch_cache(kube: FakeKube, operator_namespace: str) -> WatchCache:
    """A `WatchCache` fed by `kube` as a watch that is never behind would feed it: its reads are
    not counted (a watch is not a request per reconcile)."""

    def children_of(label: str) -> list[Packed]:
        wanted = {MANAGED_BY_KEY: MANAGED_BY, TENANT_KEY: label}
        return [
            pack(obj, api_version=obj["apiVersion"], kind=obj["kind"])
            for obj in kube.objects.values()
            if wanted.items() <= (obj["metadata"].get("labels") or {}).items()
            and (obj["apiVersion"], obj["kind"]) in OWNED
        ]

    def config_maps_of() -> list[Packed]:
        return [
            pack(obj, api_version="v1", kind="ConfigMap")
            for (_, kind, namespace, _), obj in kube.objects.items()
            if kind == "ConfigMap" and namespace == operator_namespace
        ]

    cache = WatchCache(children_of=children_of, config_maps_of=config_maps_of)
    kube.watchers.append(cache)
    return cache


def bind_log_volume(
    kube: FakeKube, namespace: str, *, volume: str = "pv-logs-1", policy: str = "Retain"
) -> dict[str, Any]:
    """Play the provisioner: bind the tenant's log claim to a new PersistentVolume."""
    claim = kube.find("PersistentVolumeClaim", "logstore-data", namespace)
    assert claim is not None
    claim["spec"]["volumeName"] = volume
    claim["status"] = {"phase": "Bound"}
    return kube.put(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": volume},
            "spec": {
                "persistentVolumeReclaimPolicy": policy,
                "claimRef": {"namespace": namespace, "name": "logstore-data"},
                "capacity": {"storage": "7Gi"},
            },
            "status": {"phase": "Bound"},
        }
    )


def make_available(kube: FakeKube) -> None:
    """Play the Deployment controller, the volume binder and kubelet: every Deployment rolled
    out and available, every PersistentVolumeClaim bound."""
    for obj in kube.objects.values():
        if obj["kind"] == "PersistentVolumeClaim":
            obj["status"] = {"phase": "Bound"}
        if obj["kind"] != "Deployment":
            continue
        replicas = obj["spec"].get("replicas", 1)
        obj["status"] = {
            "observedGeneration": obj["metadata"]["generation"],
            "replicas": replicas,
            "updatedReplicas": replicas,
            "availableReplicas": replicas,
            "readyReplicas": replicas,
            "conditions": [{"type": "Available", "status": "True"}],
        }
