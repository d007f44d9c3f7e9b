"""The purge makes sure the log volume's data is gone, whatever the storage class's reclaim
policy, or says which volume is left (item: purge leaves log data on PersistentVolumes)."""

from __future__ import annotations

import asyncio
import json

import pytest

from fakes import bind_log_volume
from swg_operator.reconcile.purge import NotYet, cancel_and_purge, receipt_name
from test_purge_retention import after, delete, fresh, purge_until_done, setup, tenant


def test_the_purge_deletes_the_log_volume_of_a_retain_storage_class() -> None:
    kube, ctx = setup(tenant(cancellation={"purgeAfterDays": 0}))
    bind_log_volume(kube, "swg-acme", volume="pv-logs-1", policy="Retain")
    delete(kube)
    kube.server_now = after(1)
    final = purge_until_done(kube, ctx)
    assert final.phase == "Purged"
    assert kube.find("PersistentVolume", "pv-logs-1") is None
    receipt = kube.find("ConfigMap", receipt_name(fresh(kube)), "swg-system")
    assert receipt is not None
    assert receipt["data"]["state"] == "Completed"
    assert "PersistentVolume/pv-logs-1" in json.loads(receipt["data"]["inventory.json"])
    assert "pv-logs-1" in receipt["data"]["volumes"]


def test_a_log_volume_that_cannot_be_deleted_stalls_the_tenant_naming_it() -> None:
    kube, ctx = setup(tenant(cancellation={"purgeAfterDays": 0}))
    bind_log_volume(kube, "swg-acme", volume="pv-logs-1", policy="Retain")
    kube.undeletable_volumes.add("pv-logs-1")
    delete(kube)
    kube.server_now = after(1)
    for _ in range(4):
        with pytest.raises(NotYet, match="pv-logs-1"):
            asyncio.run(cancel_and_purge(fresh(kube), ctx=ctx))
    status = fresh(kube)["status"]
    assert status["phase"] == "Purging"
    stalled = next(c for c in status["conditions"] if c["type"] == "Stalled")
    assert stalled["status"] == "True"
    assert stalled["reason"] == "VolumeNotDeleted"
    assert "pv-logs-1" in stalled["message"]
    receipt = kube.find("ConfigMap", receipt_name(fresh(kube)), "swg-system")
    assert receipt is not None
    assert receipt["data"]["state"] == "Purging"


def test_a_volume_not_bound_to_the_tenant_claim_is_never_touched() -> None:
    kube, ctx = setup(tenant(cancellation={"purgeAfterDays": 0}))
    other = bind_log_volume(kube, "swg-acme", volume="pv-other", policy="Retain")
    other["spec"]["claimRef"] = {"namespace": "elsewhere", "name": "data"}
    delete(kube)
    kube.server_now = after(1)
    purge_until_done(kube, ctx)
    volume = kube.find("PersistentVolume", "pv-other")
    assert volume is not None
    assert volume["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
