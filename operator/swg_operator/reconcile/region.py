"""Data stays in the declared region (`spec.placement.region`): what keeps it from being so that
only a human can fix, reported as `Unresolved` (`Stalled`) naming the cause.

The pods are pinned to nodes labelled `topology.kubernetes.io/region=<region>` (render/pods.py).
The log volume follows the log store's pod only when its StorageClass lets it:

* `allowedTopologies` restricting `topology.kubernetes.io/region` to the region: the volume can
  only be provisioned there;
* otherwise `volumeBindingMode: WaitForFirstConsumer`: the volume is provisioned where the
  scheduler placed the pod, a node of the region (and the claim is pinned to that node by the
  scheduler's `volume.kubernetes.io/selected-node`);
* `Immediate` (the default mode) without such a restriction may provision the volume anywhere
  before the pod is scheduled: refused (`StorageClassNotRegional`); so is a class whose
  `allowedTopologies` name other regions only (`StorageClassOutsideRegion`).

A topology term on another key (a zone) is not mapped to regions: such a class is judged by its
binding mode. The class judged is the claim's (once created), else the one the spec names, else
the cluster's default (`storageclass.kubernetes.io/is-default-class: "true"`); with none, the
claim stays Pending and `LogStoreAvailable` says so. A class that does not exist is
`StorageClassNotFound` (reconcile/storage.py).

No node of the region is Ready (or none carries the label): `RegionUnavailable`, since nothing
of the tenant can run there and it is never moved elsewhere.

Reads: nodes listed by the region's label, the class by name (StorageClasses listed only when
the default must be found). Nothing is read when no region is set.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from swg_operator.api import SecureWebGatewaySpec
from swg_operator.kube import KubeApi
from swg_operator.kube.kinds import NODE, STORAGE_CLASS
from swg_operator.naming import log_volume_claim_name
from swg_operator.reconcile.status import Unresolved
from swg_operator.reconcile.storage import log_volume_claim
from swg_operator.render.pods import REGION_LABEL

REGION_UNAVAILABLE: Final = "RegionUnavailable"
STORAGE_CLASS_NOT_REGIONAL: Final = "StorageClassNotRegional"
STORAGE_CLASS_OUTSIDE_REGION: Final = "StorageClassOutsideRegion"
DEFAULT_CLASS_ANNOTATION: Final = "storageclass.kubernetes.io/is-default-class"
WAIT_FOR_FIRST_CONSUMER: Final = "WaitForFirstConsumer"


def node_ready(node: Mapping[str, Any]) -> bool:
    if (node.get("spec") or {}).get("unschedulable"):
        return False
    for condition in (node.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return bool(condition.get("status") == "True")
    return False


def ready_nodes(nodes: Iterable[Mapping[str, Any]], region: str) -> list[str]:
    """Names of the schedulable Ready nodes of `region` among `nodes`."""
    return sorted(
        str(node["metadata"]["name"])
        for node in nodes
        if ((node.get("metadata") or {}).get("labels") or {}).get(REGION_LABEL) == region
        and node_ready(node)
    )


def _allowed_regions(storage_class: Mapping[str, Any]) -> set[str] | None:
    """The regions the class's `allowedTopologies` allow, or None when it does not restrict
    the region (no terms, or a term without a region requirement: that term allows any)."""
    terms = storage_class.get("allowedTopologies") or []
    if not terms:
        return None
    regions: set[str] = set()
    for term in terms:
        values = [
            str(v)
            for expr in term.get("matchLabelExpressions") or []
            if expr.get("key") == REGION_LABEL
            for v in expr.get("values") or []
        ]
        if not values:
            return None
        regions.update(values)
    return regions


def storage_class_problem(storage_class: Mapping[str, Any], region: str) -> Unresolved | None:
    """Why volumes of `storage_class` may be kept outside `region`, or None when they cannot."""
    name = (storage_class.get("metadata") or {}).get("name")
    allowed = _allowed_regions(storage_class)
    if allowed is not None and region not in allowed:
        return Unresolved(
            STORAGE_CLASS_OUTSIDE_REGION,
            f"spec.placement.region: StorageClass {name!r} provisions only in "
            f"{', '.join(sorted(allowed))} (allowedTopologies), not in {region!r}: the log "
            f"volume cannot be kept in the region. Name a class of the region in "
            f"spec.logs.storage.storageClassName",
        )
    if allowed is not None and allowed == {region}:
        return None
    mode = storage_class.get("volumeBindingMode") or "Immediate"
    if mode != WAIT_FOR_FIRST_CONSUMER:
        return Unresolved(
            STORAGE_CLASS_NOT_REGIONAL,
            f"spec.placement.region: StorageClass {name!r} binds {mode} and its "
            f"allowedTopologies do not restrict {REGION_LABEL} to {region!r}: the log volume "
            f"could be provisioned outside the region. Use a class with volumeBindingMode "
            f"{WAIT_FOR_FIRST_CONSUMER} or allowedTopologies in the region "
            f"(spec.logs.storage.storageClassName)",
        )
    return None


async def _judged_class(
    kube: KubeApi, spec: SecureWebGatewaySpec, claim: Mapping[str, Any] | None
) -> Mapping[str, Any] | None:
    name = ((claim or {}).get("spec") or {}).get("storageClassName")
    name = name or spec.logs.storage.storage_class_name
    if name:
        return await kube.get(STORAGE_CLASS, str(name))
    if claim is not None:
        return None  # a claim without a class waits for a default: LogStoreAvailable says so
    for candidate in await kube.list_labelled(STORAGE_CLASS, selector=""):
        annotations = (candidate.get("metadata") or {}).get("annotations") or {}
        if annotations.get(DEFAULT_CLASS_ANNOTATION) == "true":
            return candidate
    return None


async def region_problems(
    kube: KubeApi,
    spec: SecureWebGatewaySpec,
    objects: Iterable[Mapping[str, Any]],
    *,
    namespace: str,
) -> tuple[Unresolved, ...]:
    """What keeps the tenant's pods or log volume from staying in `spec.placement.region`."""
    region = spec.placement.region
    if not region:
        return ()
    problems: list[Unresolved] = []
    nodes = await kube.list_labelled(NODE, selector=f"{REGION_LABEL}={region}")
    if not ready_nodes(nodes, region):
        problems.append(
            Unresolved(
                REGION_UNAVAILABLE,
                f"spec.placement.region: no Ready node is labelled {REGION_LABEL}={region} "
                f"({len(nodes)} node(s) of the region, none Ready and schedulable): the "
                f"tenant's pods cannot run, and they are never placed outside the region",
            )
        )
    claim = log_volume_claim(objects, namespace)
    storage_class = await _judged_class(kube, spec, claim)
    if storage_class is not None:
        problem = storage_class_problem(storage_class, region)
        if problem is not None:
            where = f" (PersistentVolumeClaim {namespace}/{log_volume_claim_name()})"
            problems.append(Unresolved(problem.reason, problem.message + where))
    return tuple(problems)
