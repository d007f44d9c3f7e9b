"""Status that tells the truth: what the status reports is what was applied and what runs
(the log store's availability, the applied log volume, the HTTPS-inspection CA pair)."""

from __future__ import annotations

from fakes import make_available
from swg_operator.reconcile.loop import reconcile
from test_reconcile_loop import fresh, run, setup, tenant


def test_status_log_storage_is_the_size_of_the_applied_claim() -> None:
    kube, ctx = setup(tenant(logs={"storage": {"size": "200Gi"}}))
    run(reconcile(fresh(kube), ctx=ctx))
    make_available(kube)
    run(reconcile(fresh(kube), ctx=ctx))
    claim = kube.find("PersistentVolumeClaim", "logstore-data", "swg-acme")
    assert claim is not None
    applied = claim["spec"]["resources"]["requests"]["storage"]
    assert applied == "200Gi"
    assert fresh(kube)["status"]["sizing"]["logStorage"] == applied
