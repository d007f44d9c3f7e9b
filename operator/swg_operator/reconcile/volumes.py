"""The purge's dealings with the tenant's log volumes (docs/operator.md): the volumes its claims
are bound to are named in the receipt, set to be deleted with their claim whatever the storage
class says (reclaim policy Delete), and waited for; a volume the PersistentVolume controller
cannot delete leaves the tenant `Stalled`, naming it. A volume bound to another claim is never
the tenant's, and never touched.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Mapping
from typing import Any

from swg_operator.api import KIND, Condition, SecureWebGatewayStatus
from swg_operator.kube import KubeApi
from swg_operator.kube.kinds import PERSISTENT_VOLUME
from swg_operator.reconcile.actions import write_status
from swg_operator.reconcile.context import Context
from swg_operator.reconcile.lifecycle import format_time, parse_time

logger = logging.getLogger("swg_operator.purge")


class NotYet(Exception):  # noqa: N818 - a signal to wait, not a failure
    """The tenant is not done: look again in `delay` seconds (the caller sleeps, no polling)."""

    def __init__(self, delay: float, reason: str) -> None:
        super().__init__(f"{reason}; next check in {delay:.0f}s")
        self.delay = delay
        self.reason = reason


# How long a released volume may take to be deleted before the tenant says so (Stalled).
VOLUME_PATIENCE = datetime.timedelta(minutes=10)


def volume_entry(volume: str) -> str:
    return f"PersistentVolume/{volume}"


def claims_volume(pv: Mapping[str, Any], namespace: str) -> bool:
    """True when `pv` is bound (or was, being released) to a claim in the tenant namespace."""
    ref = (pv.get("spec") or {}).get("claimRef") or {}
    return bool(ref.get("namespace") == namespace)


async def claimed_volumes(kube: KubeApi, found: list[dict[str, Any]], namespace: str) -> list[str]:
    """The volumes of the tenant's claims: named by the claim, and claimed back by the volume
    (a volume bound to another claim is never the tenant's, and never touched)."""
    volumes = []
    for obj in found:
        if obj.get("kind") != "PersistentVolumeClaim":
            continue
        name = (obj.get("spec") or {}).get("volumeName")
        if not name:
            continue
        pv = await kube.get(PERSISTENT_VOLUME, str(name))
        if pv is not None and claims_volume(pv, namespace):
            volumes.append(str(name))
    return volumes


async def reclaim_by_deletion(kube: KubeApi, volume: str, namespace: str) -> dict[str, Any] | None:
    """Make the PV controller delete `volume` once its claim is gone: reclaim policy Delete.
    Returns the volume while it exists (None once it is gone, or when it is no longer the
    tenant's: rebound elsewhere, it is not touched)."""
    pv = await kube.get(PERSISTENT_VOLUME, volume)
    if pv is None or not claims_volume(pv, namespace):
        return None
    if (pv.get("spec") or {}).get("persistentVolumeReclaimPolicy") != "Delete":
        logger.info("Set the reclaim policy of PersistentVolume %s to Delete", volume)
        pv = await kube.patch(
            PERSISTENT_VOLUME, volume, {"spec": {"persistentVolumeReclaimPolicy": "Delete"}}
        )
    return pv


async def volume_left(
    body: Mapping[str, Any],
    previous: SecureWebGatewayStatus,
    pv: Mapping[str, Any],
    receipt: Mapping[str, Any],
    *,
    ctx: Context,
) -> None:
    """A volume of the tenant is still there after its claim went: wait, or, when the PV
    controller failed to delete it or it takes too long, report the tenant `Stalled` naming it.
    Always raises `NotYet`: the purge is complete only when the data is gone."""
    name = pv["metadata"]["name"]
    status = pv.get("status") or {}
    now = ctx.clock()
    started = parse_time(str(receipt.get("startedAt") or format_time(now)))
    if status.get("phase") != "Failed" and now - started < VOLUME_PATIENCE:
        raise NotYet(5.0, f"Waiting for PersistentVolume {name} (the log volume) to be deleted")
    message = (
        f"PersistentVolume {name} (the tenant's log volume) is not deleted: phase "
        f"{status.get('phase', 'unknown')}"
        + (f", {status['message']}" if status.get("message") else "")
        + "; its storage must be erased and the volume deleted by an administrator"
    )
    logger.warning("Stalled the purge of %s %s: %s", KIND, body["metadata"]["name"], message)
    conditions = [c for c in previous.conditions if c.type != "Stalled"]
    before = next((c for c in previous.conditions if c.type == "Stalled"), None)
    conditions.append(
        Condition(
            type="Stalled",
            status="True",
            reason="VolumeNotDeleted",
            message=message,
            last_transition_time=before.last_transition_time
            if before is not None and before.status == "True"
            else format_time(now),
            observed_generation=previous.observed_generation,
        )
    )
    await write_status(ctx, body, previous.model_copy(update={"conditions": tuple(conditions)}))
    raise NotYet(60.0, message)
