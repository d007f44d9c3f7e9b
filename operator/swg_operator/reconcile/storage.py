"""Why the log volume's claim does not bind, when the reason is one only a human can fix: the
StorageClass it names does not exist. The log store's pod then stays Pending for ever; this is
reported as an `Unresolved` (`Stalled`) naming the class and the claim. A claim of an existing
class that is not bound yet, or one without a class (no default StorageClass: the volume
binder gives it the default once one is marked), is reported by `LogStoreAvailable` alone
(reason `ClaimPending`), as progress.

Only a claim that is not `Bound` is looked into, with one `get` of its StorageClass by name: a
tenant whose log volume is bound costs no request. A class found is remembered for
`CLASS_RECHECK` (`StorageClasses`, one memory for every tenant): a claim that waits for its
first consumer (`volumeBindingMode: WaitForFirstConsumer`) stays unbound through the
reconciles of a new tenant, and a class seen once needs no `get` on each of them. A class
deleted meanwhile is seen when the memory lapses; one not found is asked for every time, so a
class created to fix a claim is seen at the next reconcile.

`leaked_claim_charge` tells a quota charged for a claim that was never stored (see there): the
reconcile deletes that quota and retries, and the quota made again counts what exists.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from swg_operator.api import SecureWebGatewaySpec
from swg_operator.kube import KubeApi, KubeApiError
from swg_operator.kube.kinds import PVC, RESOURCE_QUOTA, STORAGE_CLASS
from swg_operator.naming import log_volume_claim_name, resource_quota_name
from swg_operator.reconcile.status import Unresolved

STORAGE_CLASS_NOT_FOUND: Final = "StorageClassNotFound"
CLASS_RECHECK: Final = datetime.timedelta(minutes=10)


@dataclass
class StorageClasses:
    """The StorageClasses found to exist, with when (see the module docstring)."""

    found: dict[str, datetime.datetime] = field(default_factory=dict)

    def known(self, name: str, now: datetime.datetime) -> bool:
        """Found less than `CLASS_RECHECK` ago (a clock that went back counts as stale)."""
        at = self.found.get(name)
        return at is not None and at <= now < at + CLASS_RECHECK

    async def exists(self, kube: KubeApi, name: str, now: datetime.datetime) -> bool:
        if self.known(name, now):
            return True
        if await kube.get(STORAGE_CLASS, name) is None:
            self.found.pop(name, None)
            return False
        self.found[name] = now
        return True


def log_volume_claim(
    objects: Iterable[Mapping[str, Any]], namespace: str
) -> Mapping[str, Any] | None:
    """The tenant's log volume claim among `objects` (the last one wins: the freshest)."""
    found = None
    for obj in objects:
        meta = obj.get("metadata", {})
        if (
            obj.get("kind") == "PersistentVolumeClaim"
            and meta.get("namespace") == namespace
            and meta.get("name") == log_volume_claim_name()
        ):
            found = obj
    return found


def claim_phase(claim: Mapping[str, Any]) -> str:
    return str((claim.get("status") or {}).get("phase") or "Pending")


async def log_storage_problems(
    kube: KubeApi,
    spec: SecureWebGatewaySpec,
    objects: Iterable[Mapping[str, Any]],
    *,
    namespace: str,
    now: datetime.datetime,
    classes: StorageClasses | None = None,
) -> tuple[Unresolved, ...]:
    """What keeps the log volume's claim from binding that only a human can fix. `classes`:
    where the classes found are remembered (None: remember nothing)."""
    claim = log_volume_claim(objects, namespace)
    if claim is None or claim_phase(claim) == "Bound":
        return ()
    where = f"PersistentVolumeClaim {namespace}/{log_volume_claim_name()}"
    name = (claim.get("spec") or {}).get("storageClassName")
    if not name:
        return ()
    if await (classes or StorageClasses()).exists(kube, str(name), now):
        return ()
    declared = spec.logs.storage.storage_class_name
    source = (
        "spec.logs.storage.storageClassName"
        if declared == name
        else "the cluster's default StorageClass"
    )
    return (
        Unresolved(
            STORAGE_CLASS_NOT_FOUND,
            f"{source}: StorageClass {name!r} does not exist, so {where} stays Pending and "
            f"the log store cannot start. Create the class, or name an existing one "
            f"(kubectl get storageclass) and delete the unbound claim (it holds no data; a "
            f"claim's class cannot change) so that it is created again with it",
        ),
    )


def exceeded_quota(exc: KubeApiError) -> bool:
    """True for a write refused by a ResourceQuota's admission (403 `exceeded quota`)."""
    return exc.status == 403 and "exceeded quota" in exc.api_message


def _count(value: Any) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None


async def leaked_claim_charge(kube: KubeApi, namespace: str) -> Mapping[str, Any] | None:
    """The tenant's ResourceQuota when it is charged for a volume claim that does not exist,
    else None. A create the API server admitted (and charged to the quota) but never stored,
    because its client was killed mid-request, leaves that charge until
    kube-controller-manager's next full quota resync (minutes); the tenant quota admits one
    claim, so the log claim is refused until then. Told by the quota's status: its claims used
    reach its hard limit while the namespace holds fewer claims than it counts as used, and the
    log claim is not among them. Reads by list only (the operator holds no `get` on these)."""
    if await kube.find_named(PVC, log_volume_claim_name(), namespace=namespace) is not None:
        return None
    quota = await kube.find_named(RESOURCE_QUOTA, resource_quota_name(), namespace=namespace)
    if quota is None or quota.get("metadata", {}).get("deletionTimestamp"):
        return None
    status = quota.get("status") or {}
    hard = _count((status.get("hard") or {}).get("persistentvolumeclaims"))
    used = _count((status.get("used") or {}).get("persistentvolumeclaims"))
    if hard is None or used is None or used < hard:
        return None
    claims = await kube.list_labelled(PVC, selector="", namespace=namespace)
    return quota if len(claims) < used else None
