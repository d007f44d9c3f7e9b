"""Cancellation, purge and crashes, with the operator as a process against a real API server.

The shifted-clock test runs the operator under Debian's `faketime` (libfaketime moves the clock
of the operator process only; the API server keeps the real time). How it passes by design:
by default the purge deadline is judged by the API server's clock (the Date header of a fresh
response), so an operator whose clock is 91 days ahead still purges nothing: the test shows it.
The same shifted operator started with the explicit `--purge-clock=local` (logged as a warning
and recorded in the receipt) trusts its own clock plus a 10 minute margin, and purges.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from e2e.cluster import Cluster, wait_until
from e2e.operator_process import (
    get_tenant,
    labelled_objects,
    tenant_manifest,
    wait_event,
    wait_phase,
)

pytestmark = pytest.mark.cluster

OPERATOR_NS = "swg-system"


def receipt(cluster: Cluster, name: str) -> dict[str, Any] | None:
    listed = cluster.kubectl_json(
        "get", "configmap", "-n", OPERATOR_NS, "-l", f"swg.dev/purged-tenant={name}"
    )
    items = listed["items"]
    return items[0] if items else None


def gone(cluster: Cluster, name: str) -> bool:
    namespace = cluster.kubectl("get", "namespace", f"swg-{name}", check=False)
    return get_tenant(cluster, name) is None and namespace.returncode != 0


def assert_purged(cluster: Cluster, name: str, *, clock_mode: str = "server") -> dict[str, Any]:
    assert gone(cluster, name)
    assert labelled_objects(cluster, name) == set()
    record = receipt(cluster, name)
    assert record is not None, "no purge receipt"
    data = record["data"]
    assert data["state"] == "Completed"
    assert data["completedAt"] >= data["purgeAt"]
    assert data["clockMode"] == clock_mode
    inventory = json.loads(data["inventory.json"])
    assert f"Namespace/swg-{name}" in inventory
    assert f"PersistentVolumeClaim/swg-{name}/logstore-data" in inventory
    assert data["operatorVersion"]
    return record


def test_cancellation_with_zero_days_purges_and_leaves_a_receipt(
    prepared: Cluster, new_operator: Any, tenant_name: str
) -> None:
    cluster, name = prepared, tenant_name
    new_operator()
    cluster.apply(tenant_manifest(name, cancellation={"purgeAfterDays": 0}))
    wait_phase(cluster, name, "Ready", generation=1)
    cluster.kubectl("delete", "swg", name, "--wait=false")
    wait_until(lambda: gone(cluster, name), timeout=120, what=f"tenant {name} purged")
    record = assert_purged(cluster, name)
    assert record["data"]["cancelledAt"] == record["data"]["purgeAt"]
    wait_event(cluster, name, "Purged", record["metadata"]["name"])
    wait_event(cluster, name, "Cancelled", "traffic stopped")


def test_ninety_days_purges_nothing_early_even_under_a_shifted_clock(
    prepared: Cluster, new_operator: Any, tenant_name: str
) -> None:
    cluster, name, ns = prepared, tenant_name, f"swg-{tenant_name}"
    # Look at the deadline every 2 s instead of hourly, so each step below is seen quickly.
    recheck = "--purge-recheck-seconds=2"
    new_operator(recheck)
    cluster.apply(tenant_manifest(name))  # purgeAfterDays defaults to 90
    wait_phase(cluster, name, "Ready", generation=1)
    cluster.kubectl("delete", "swg", name, "--wait=false")
    body = wait_phase(cluster, name, "Cancelled")
    cancellation = body["status"]["cancellation"]
    assert cancellation["cancelledAt"] == body["metadata"]["deletionTimestamp"]
    assert cancellation["purgeAt"] > cancellation["cancelledAt"]
    # Traffic stopped at once; the logs stay exportable.
    objects = labelled_objects(cluster, name)
    assert f"Service/{ns}/proxy" not in objects
    assert f"PersistentVolumeClaim/{ns}/logstore-data" in objects
    assert "swg.dev/purge" in body["metadata"]["finalizers"]

    # A restart changes nothing: the deadline is in status and recomputed the same way.
    operator = new_operator(recheck)
    wait_until(
        lambda: "Deferred the purge" in operator.log_text(), timeout=60, what="deadline checked"
    )
    again = get_tenant(cluster, name)
    assert again is not None
    assert again["status"]["cancellation"] == cancellation
    assert labelled_objects(cluster, name) == objects

    # 91 days ahead, default clock mode: the API server's clock says not yet.
    shifted = new_operator(recheck, clock_offset="+91d")
    wait_until(
        lambda: shifted.metrics().get("swg_operator_clock_skew_seconds", 0) > 90 * 86400,
        timeout=60,
        what="the shifted operator measured its clock against the API server's",
    )
    wait_until(lambda: "Deferred the purge" in shifted.log_text(), timeout=60, what="deferred")
    assert get_tenant(cluster, name) is not None
    assert labelled_objects(cluster, name) == objects
    assert receipt(cluster, name) is None

    # 91 days ahead, with the explicit local-clock opt-in: the purge happens.
    new_operator(recheck, "--purge-clock=local", clock_offset="+91d")
    wait_until(lambda: gone(cluster, name), timeout=180, what=f"tenant {name} purged")
    assert_purged(cluster, name, clock_mode="local")


def test_sigkill_while_creating_converges_without_duplicates_or_orphans(
    prepared: Cluster, new_operator: Any, tenant_name: str
) -> None:
    cluster, name, ns = prepared, tenant_name, f"swg-{tenant_name}"
    operator = new_operator()
    cluster.apply(tenant_manifest(name))
    # Kill it as soon as the first objects exist, in the middle of applying the rest.
    wait_until(
        lambda: cluster.kubectl("get", "namespace", ns, check=False).returncode == 0,
        timeout=60,
        interval=0.05,
        what="namespace created",
    )
    operator.kill()
    partial = labelled_objects(cluster, name)
    new_operator()
    wait_phase(cluster, name, "Ready", generation=1, timeout=120)
    objects = labelled_objects(cluster, name)
    assert partial <= objects
    # Exactly the desired set: one of each, nothing left over from the interrupted run.
    assert len([o for o in objects if o.startswith("Deployment/")]) == 3
    assert len([o for o in objects if o.startswith("Namespace/")]) == 1
    names = [o.split("/")[2] for o in objects if o.startswith("Deployment/")]
    assert sorted(names) == ["antivirus", "logstore", "proxy"]
    pods = cluster.kubectl_json("get", "replicasets", "-n", ns)["items"]
    assert len({rs["metadata"]["ownerReferences"][0]["name"] for rs in pods}) == 3


def test_sigkill_while_purging_completes_after_restart(
    prepared: Cluster, new_operator: Any, tenant_name: str
) -> None:
    cluster, name = prepared, tenant_name
    operator = new_operator()
    cluster.apply(tenant_manifest(name, cancellation={"purgeAfterDays": 0}))
    wait_phase(cluster, name, "Ready", generation=1)
    cluster.kubectl("delete", "swg", name, "--wait=false")

    def purging() -> bool:
        body = get_tenant(cluster, name)
        return body is None or (body.get("status") or {}).get("phase") == "Purging"

    wait_until(purging, timeout=60, interval=0.05, what="purge started")
    operator.kill()
    new_operator()
    wait_until(lambda: gone(cluster, name), timeout=120, what=f"tenant {name} purged")
    assert_purged(cluster, name)


def test_a_namespace_made_by_someone_else_is_never_taken_over_nor_purged(
    prepared: Cluster, new_operator: Any, tenant_name: str
) -> None:
    cluster, name, ns = prepared, tenant_name, f"swg-{tenant_name}"
    owned = {"app.kubernetes.io/managed-by": "swg-operator", "swg.dev/tenant": name}
    # Made ahead of the tenant, even with the tenant's labels: not the operator's.
    cluster.apply(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": owned}}
    )
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "theirs", "namespace": ns, "labels": owned},
            "data": {"precious": "yes"},
        }
    )
    try:
        new_operator()
        cluster.apply(tenant_manifest(name, cancellation={"purgeAfterDays": 0}))

        def stalled() -> dict[str, Any] | None:
            body = get_tenant(cluster, name)
            found = [
                c
                for c in ((body or {}).get("status") or {}).get("conditions", [])
                if c["type"] == "Stalled" and c["status"] == "True"
            ]
            return found[0] if found else None

        condition = wait_until(stalled, timeout=60, what=f"{name} Stalled")
        assert condition["reason"] == "NamespaceNotOwned"
        assert ns in condition["message"]
        assert labelled_objects(cluster, name) == {f"Namespace//{ns}", f"ConfigMap/{ns}/theirs"}
        namespace = cluster.kubectl_json("get", "namespace", ns)
        assert "swg.dev/tenant-uid" not in (namespace["metadata"].get("annotations") or {})
        cluster.kubectl("delete", "swg", name, "--wait=false")
        wait_until(lambda: get_tenant(cluster, name) is None, timeout=120, what="tenant gone")
        assert cluster.kubectl_json("get", "configmap", "theirs", "-n", ns)["data"] == {
            "precious": "yes"
        }
        record = receipt(cluster, name)
        assert record is not None
        assert "not created for this tenant" in record["data"]["deleted"]
    finally:
        cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)


def test_a_tenant_named_after_the_operator_namespace_touches_nothing_there(
    prepared: Cluster, new_operator: Any
) -> None:
    cluster, name = prepared, OPERATOR_NS.removeprefix("swg-")
    new_operator()
    before = {
        item["metadata"]["name"]
        for item in cluster.kubectl_json("get", "configmaps", "-n", OPERATOR_NS)["items"]
    }
    cluster.apply(tenant_manifest(name, cancellation={"purgeAfterDays": 0}))
    try:
        body = wait_until(
            lambda: (
                (b := get_tenant(cluster, name)) and (b.get("status") or {}).get("conditions") and b
            ),
            timeout=60,
            what=f"{name} reconciled",
        )
        (stalled,) = [c for c in body["status"]["conditions"] if c["type"] == "Stalled"]
        assert (stalled["status"], stalled["reason"]) == ("True", "NamespaceReserved")
        assert OPERATOR_NS in stalled["message"]
        cluster.kubectl("delete", "swg", name, "--wait=false")
        wait_until(lambda: get_tenant(cluster, name) is None, timeout=120, what="tenant gone")
        namespace = cluster.kubectl_json("get", "namespace", OPERATOR_NS)
        assert not namespace["metadata"].get("deletionTimestamp")
        after = {
            item["metadata"]["name"]
            for item in cluster.kubectl_json("get", "configmaps", "-n", OPERATOR_NS)["items"]
        }
        assert before <= after  # only its receipt was added
        assert labelled_objects(cluster, name) == set()
    finally:  # not forget_tenant(): that would delete the namespace swg-<name>
        cluster.kubectl("delete", "swg", name, "--wait=false", "--ignore-not-found", check=False)
        cluster.kubectl(
            "patch",
            "swg",
            name,
            "--type=merge",
            "-p",
            '{"metadata":{"finalizers":null}}',
            check=False,
        )
