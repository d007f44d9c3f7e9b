"""The sizing plan's numbers as Kubernetes shapes: container `resources`, the ResourceQuota's
`hard`, the LimitRange's `spec`, and the JSON form `swg-operator sizing` prints.

The sizing model (`swg_operator.sizing`) works in millicores and bytes; this is the one place
that writes them as quantity strings (`quantities.format_cpu`, `quantities.format_bytes`).
"""

from __future__ import annotations

from typing import Any

from swg_operator.quantities import format_bytes, format_cpu
from swg_operator.sizing_plan import LimitRangePlan, QuotaPlan, Resources, SizingPlan, WorkloadPlan


def container_resources(resources: Resources) -> dict[str, dict[str, str]]:
    """A container's `resources` field."""
    return {
        "requests": {
            "cpu": format_cpu(resources.cpu_request),
            "memory": format_bytes(resources.memory_request),
        },
        "limits": {
            "cpu": format_cpu(resources.cpu_limit),
            "memory": format_bytes(resources.memory_limit),
        },
    }


def quota_hard(quota: QuotaPlan) -> dict[str, str]:
    """`spec.hard` of the tenant namespace's ResourceQuota."""
    return {
        "requests.cpu": format_cpu(quota.requests_cpu),
        "limits.cpu": format_cpu(quota.limits_cpu),
        "requests.memory": format_bytes(quota.requests_memory),
        "limits.memory": format_bytes(quota.limits_memory),
        "pods": str(quota.pods),
        "requests.storage": format_bytes(quota.requests_storage),
        "persistentvolumeclaims": str(quota.persistent_volume_claims),
    }


def limit_range_spec(plan: LimitRangePlan, *, requests_percent: int = 100) -> dict[str, Any]:
    """`spec` of the LimitRange; `defaultRequest` scaled like every rendered container's."""
    defaults = container_resources(plan.default.with_requests_percent(requests_percent))
    return {
        "limits": [
            {
                "type": "Container",
                "default": defaults["limits"],
                "defaultRequest": defaults["requests"],
                "max": {"cpu": format_cpu(plan.max_cpu), "memory": format_bytes(plan.max_memory)},
            }
        ]
    }


def workload_document(plan: WorkloadPlan) -> dict[str, Any]:
    out: dict[str, Any] = {
        "replicas": plan.replicas,
        "maxSurge": plan.max_surge,
        "maxUnavailable": plan.max_unavailable,
        "containers": {n: container_resources(r) for n, r in plan.containers.items()},
        "initContainer": container_resources(plan.init_container),
    }
    if plan.log_spool:
        out["logSpool"] = format_bytes(plan.log_spool)
    if plan.pdb_max_unavailable is not None:
        out["podDisruptionBudget"] = {
            "maxUnavailable": plan.pdb_max_unavailable,
            "minAvailable": plan.pdb_min_available,
        }
    return out


def sizing_document(plan: SizingPlan) -> dict[str, Any]:
    """The plan as JSON-ready data (camelCase keys, Kubernetes quantity strings)."""
    inputs: dict[str, Any] = {
        "endpoints": plan.endpoints,
        "requestsPerSecond": plan.requests_per_second,
        "retentionDays": plan.retention_days,
        "antivirusEnabled": plan.antivirus_enabled,
        "clamavDatabase": plan.clamav_database.value,
        "aclEntries": plan.acl_entries,
    }
    if plan.log_volume_override is not None:
        inputs["logVolumeOverride"] = format_bytes(plan.log_volume_override)
    return {
        "inputs": inputs,
        "provisional": plan.provisional,
        "workloads": {name: workload_document(w) for name, w in plan.workloads().items()},
        "logVolume": format_bytes(plan.log_volume),
        "resourceQuota": {"hard": quota_hard(plan.quota)},
        "limitRange": limit_range_spec(plan.limit_range),
    }
