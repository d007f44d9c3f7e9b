"""Status that tells the truth: what the status reports is what was applied and what runs
(the log store's availability, the applied log volume, the HTTPS-inspection CA pair)."""

from __future__ import annotations

from typing import Any

from fakes import FakeKube, make_available
from swg_operator.reconcile.loop import reconcile
from swg_operator.reconcile.storage import CLASS_RECHECK
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


def _conditions(kube: FakeKube) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in fresh(kube)["status"]["conditions"]}


def _deployments_available_claim_pending(kube: FakeKube) -> None:
    """The proxy and anti-virus run; the log store pod waits for its volume."""
    make_available(kube)
    store = kube.find("Deployment", "logstore", "swg-acme")
    assert store is not None
    store["status"] = {
        "observedGeneration": store["metadata"]["generation"],
        "replicas": 1,
        "unavailableReplicas": 1,
        "conditions": [{"type": "Available", "status": "False"}],
    }
    claim = kube.find("PersistentVolumeClaim", "logstore-data", "swg-acme")
    assert claim is not None
    claim["status"] = {"phase": "Pending"}


def test_ready_needs_the_log_store_and_a_missing_storage_class_is_named() -> None:
    kube, ctx = setup(tenant(logs={"storage": {"storageClassName": "regional-ssd"}}))
    run(reconcile(fresh(kube), ctx=ctx))
    _deployments_available_claim_pending(kube)
    run(reconcile(fresh(kube), ctx=ctx))
    conditions = _conditions(kube)
    assert conditions["Ready"]["status"] == "False"
    store = conditions["LogStoreAvailable"]
    assert store["status"] == "False"
    assert store["reason"] == "StorageClassNotFound"
    assert "regional-ssd" in store["message"]
    assert "spec.logs.storage.storageClassName" in store["message"]
    assert "swg-acme/logstore-data" in store["message"]
    # Only a human can fix it: Stalled, naming the class.
    assert conditions["Stalled"]["status"] == "True"
    assert "regional-ssd" in conditions["Ready"]["message"]
    assert fresh(kube)["status"]["phase"] != "Ready"


def test_an_unbound_claim_of_an_existing_class_is_reported_while_progressing() -> None:
    kube, ctx = setup(tenant(logs={"storage": {"storageClassName": "local-path"}}))
    _local_path_class(kube)
    run(reconcile(fresh(kube), ctx=ctx))
    _deployments_available_claim_pending(kube)
    run(reconcile(fresh(kube), ctx=ctx))
    conditions = _conditions(kube)
    store = conditions["LogStoreAvailable"]
    assert (store["status"], store["reason"]) == ("False", "ClaimPending")
    assert "swg-acme/logstore-data" in store["message"]
    assert "local-path" in store["message"]
    assert conditions["Ready"]["status"] == "False"
    assert conditions["Stalled"]["status"] == "False"
    assert conditions["Reconciling"]["status"] == "True"


def test_a_claim_without_a_class_says_the_cluster_has_no_default() -> None:
    kube, ctx = setup(tenant())
    run(reconcile(fresh(kube), ctx=ctx))
    _deployments_available_claim_pending(kube)
    run(reconcile(fresh(kube), ctx=ctx))
    store = _conditions(kube)["LogStoreAvailable"]
    assert (store["status"], store["reason"]) == ("False", "ClaimPending")
    assert "swg-acme/logstore-data" in store["message"]
    assert "no default" in store["message"]


def test_log_store_available_when_its_deployment_is() -> None:
    kube, ctx = setup(tenant())
    run(reconcile(fresh(kube), ctx=ctx))
    make_available(kube)
    run(reconcile(fresh(kube), ctx=ctx))
    conditions = _conditions(kube)
    assert conditions["LogStoreAvailable"]["status"] == "True"
    assert conditions["Ready"]["status"] == "True"


def test_status_log_storage_follows_the_claim_that_exists() -> None:
    kube, ctx = setup(tenant())
    run(reconcile(fresh(kube), ctx=ctx))
    body = fresh(kube)
    body["spec"]["logs"] = {"storage": {"size": "300Gi"}}
    body["metadata"]["generation"] = 2
    run(reconcile(body, ctx=ctx))
    claim = kube.find("PersistentVolumeClaim", "logstore-data", "swg-acme")
    assert claim is not None
    kept = claim["spec"]["resources"]["requests"]["storage"]
    assert kept != "300Gi"  # an existing claim keeps its size
    assert fresh(kube)["status"]["sizing"]["logStorage"] == kept


def test_a_class_found_is_not_asked_for_again_until_the_recheck() -> None:
    """A claim that waits for its first consumer stays unbound through a new tenant's
    reconciles: its StorageClass is read once, then remembered for `CLASS_RECHECK`; a class
    deleted meanwhile is named when the memory lapses."""
    kube, ctx = setup(tenant(logs={"storage": {"storageClassName": "local-path"}}))
    _local_path_class(kube)
    run(reconcile(fresh(kube), ctx=ctx))
    _deployments_available_claim_pending(kube)
    for _ in range(3):
        run(reconcile(fresh(kube), ctx=ctx))
    assert _class_reads(kube) == 1
    assert _conditions(kube)["LogStoreAvailable"]["reason"] == "ClaimPending"
    del kube.objects[("storage.k8s.io/v1", "StorageClass", None, "local-path")]
    run(reconcile(fresh(kube), ctx=ctx))
    assert _conditions(kube)["LogStoreAvailable"]["reason"] == "ClaimPending"  # remembered
    then = ctx.clock() + CLASS_RECHECK
    ctx.clock = lambda: then
    run(reconcile(fresh(kube), ctx=ctx))
    assert _conditions(kube)["LogStoreAvailable"]["reason"] == "StorageClassNotFound"
    assert _class_reads(kube) == 2


def _class_reads(kube: FakeKube) -> int:
    return len([r for r in kube.reads if r[:2] == ("get", "StorageClass")])


def _local_path_class(kube: FakeKube) -> None:
    kube.put(
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {"name": "local-path"},
            "provisioner": "rancher.io/local-path",
        }
    )
