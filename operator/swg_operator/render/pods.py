"""Pieces every tenant pod shares: the restricted security contexts, volumes, probes, placement
and the Deployment around a pod spec."""

from __future__ import annotations

from typing import Any, Final

from swg_operator import naming
from swg_operator.labels import CONFIG_DIGEST_ANNOTATION
from swg_operator.naming import Component
from swg_operator.render.context import RUN_AS_ID, Tenant, manifest

REGION_LABEL: Final = "topology.kubernetes.io/region"
ZONE_LABEL: Final = "topology.kubernetes.io/zone"
HOSTNAME_LABEL: Final = "kubernetes.io/hostname"
REVISION_HISTORY_LIMIT: Final = 5


def pod_security_context() -> dict[str, Any]:
    """Pod Security Standard `restricted`, with the images' fixed user and group."""
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS_ID,
        "runAsGroup": RUN_AS_ID,
        "fsGroup": RUN_AS_ID,
        "fsGroupChangePolicy": "OnRootMismatch",
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }


def empty_dir(name: str, *, size_limit: str, memory: bool = False) -> dict[str, Any]:
    source: dict[str, Any] = {"sizeLimit": size_limit}
    if memory:
        source["medium"] = "Memory"
    return {"name": name, "emptyDir": source}


def projected_config_volume(name: str, config_maps: tuple[str, ...]) -> dict[str, Any]:
    """One read-only directory holding the keys of several ConfigMaps (a missing one keeps the
    pod from starting rather than running it with part of its configuration)."""
    sources = [{"configMap": {"name": cm, "optional": False}} for cm in config_maps]
    return {"name": name, "projected": {"defaultMode": 0o444, "sources": sources}}


def mount(name: str, path: str, *, read_only: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "mountPath": path}
    if read_only:
        out["readOnly"] = True
    return out


def tcp_probes(port: str, *, startup_seconds: int) -> dict[str, Any]:
    """Startup, readiness and liveness probes on a TCP port. The startup probe gives the daemon
    `startup_seconds` before liveness may restart it."""
    return {
        "startupProbe": {
            "tcpSocket": {"port": port},
            "periodSeconds": 5,
            "failureThreshold": -(-startup_seconds // 5),
        },
        "readinessProbe": {
            "tcpSocket": {"port": port},
            "periodSeconds": 5,
            "timeoutSeconds": 2,
            "failureThreshold": 2,
        },
        "livenessProbe": {
            "tcpSocket": {"port": port},
            "periodSeconds": 10,
            "timeoutSeconds": 3,
            "failureThreshold": 3,
        },
    }


def exec_probes(command: list[str], *, startup_seconds: int) -> dict[str, Any]:
    return {
        "startupProbe": {
            "exec": {"command": list(command)},
            "periodSeconds": 5,
            "timeoutSeconds": 4,
            "failureThreshold": -(-startup_seconds // 5),
        },
        "readinessProbe": {
            "exec": {"command": list(command)},
            "periodSeconds": 10,
            "timeoutSeconds": 4,
            "failureThreshold": 2,
        },
        "livenessProbe": {
            "exec": {"command": list(command)},
            "periodSeconds": 20,
            "timeoutSeconds": 8,
            "failureThreshold": 3,
        },
    }


def affinity(tenant: Tenant, component: Component, *, spread: bool) -> dict[str, Any] | None:
    """Region pinning (data residency, required) and spreading replicas over nodes and zones
    (preferred: a small cluster still schedules them)."""
    out: dict[str, Any] = {}
    region = tenant.spec.placement.region
    if region:
        out["nodeAffinity"] = {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [
                            {"key": REGION_LABEL, "operator": "In", "values": [region]}
                        ]
                    }
                ]
            }
        }
    if spread:
        out["podAntiAffinity"] = {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": weight,
                    "podAffinityTerm": {
                        "labelSelector": {"matchLabels": tenant.selector(component)},
                        "topologyKey": topology,
                    },
                }
                for weight, topology in ((100, HOSTNAME_LABEL), (50, ZONE_LABEL))
            ]
        }
    return out or None


def _pull_secrets(tenant: Tenant) -> dict[str, Any]:
    names = tenant.settings.images.pull_secrets
    return {"imagePullSecrets": [{"name": name} for name in names]} if names else {}


def pod_spec(
    tenant: Tenant,
    component: Component,
    *,
    containers: list[dict[str, Any]],
    volumes: list[dict[str, Any]],
    grace_seconds: int,
    spread: bool,
    init_containers: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "serviceAccountName": naming.service_account_name(component),
        "automountServiceAccountToken": False,
        # No Service environment variables: tenant pods find each other through DNS only.
        "enableServiceLinks": False,
        "securityContext": pod_security_context(),
        **_pull_secrets(tenant),
        "terminationGracePeriodSeconds": grace_seconds,
        **({"initContainers": init_containers} if init_containers else {}),
        "containers": containers,
        "volumes": volumes,
    }
    placement = affinity(tenant, component, spread=spread)
    if placement:
        spec["affinity"] = placement
    return spec


def deployment(
    tenant: Tenant,
    component: Component,
    *,
    replicas: int,
    strategy: dict[str, Any],
    pod: dict[str, Any],
    digest: str,
) -> dict[str, Any]:
    return manifest(
        "apps/v1",
        "Deployment",
        tenant.metadata(naming.workload_name(component), component=component),
        spec={
            "replicas": replicas,
            "revisionHistoryLimit": REVISION_HISTORY_LIMIT,
            "selector": {"matchLabels": tenant.selector(component)},
            "strategy": strategy,
            "template": {
                "metadata": {
                    "labels": tenant.labels(component),
                    "annotations": {CONFIG_DIGEST_ANNOTATION: digest},
                },
                "spec": pod,
            },
        },
    )


def rolling_update(max_surge: int, max_unavailable: int) -> dict[str, Any]:
    return {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": max_surge, "maxUnavailable": max_unavailable},
    }
