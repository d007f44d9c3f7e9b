"""The operator as a process against a real API server: create, change, drift, suspend.

Each test starts its own `swg-operator run` (one operator at a time against the cluster), uses
its own tenant name, and polls with deadlines. Pods are simulated by kwok: Deployments become
Available without a kubelet, which is what the status conditions are computed from.

No echo work: a new tenant gets no false drift notice, and a reconcile of a tenant whose objects
are as desired makes no request (the operator's own metric of its adapter's requests; kopf's
requests, its watches and its finalizer, are not in it).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from e2e.cluster import Cluster, wait_until
from e2e.operator_process import (
    OperatorProcess,
    condition,
    get_tenant,
    labelled_objects,
    tenant_events,
    tenant_manifest,
    wait_event,
    wait_phase,
)

pytestmark = pytest.mark.cluster


def names(objects: set[str], kind: str) -> set[str]:
    return {o.split("/")[2] for o in objects if o.startswith(f"{kind}/")}


def deployment(cluster: Cluster, ns: str, name: str) -> dict[str, Any]:
    result = cluster.kubectl_json("get", "deployment", name, "-n", ns)
    assert isinstance(result, dict)
    return result


def patch_spec(cluster: Cluster, name: str, spec: dict[str, object]) -> None:
    cluster.kubectl("patch", "swg", name, "--type=merge", "-p", json.dumps({"spec": spec}))


def test_create_change_and_prune(
    prepared: Cluster, operator: OperatorProcess, tenant_name: str
) -> None:
    cluster, name, ns = prepared, tenant_name, f"swg-{tenant_name}"
    cluster.apply(tenant_manifest(name))
    body = wait_phase(cluster, name, "Ready", generation=1)
    for kind in (
        "Ready",
        "SpecValid",
        "Isolated",
        "QuotaApplied",
        "ProxyAvailable",
        "AntivirusAvailable",
        "LogStoreAvailable",
    ):
        assert condition(body, kind)["status"] == "True", (kind, condition(body, kind))
        assert condition(body, kind)["observedGeneration"] == 1
    assert condition(body, "Reconciling")["status"] == "False"
    assert condition(body, "Stalled")["status"] == "False"
    assert body["status"]["proxyEndpoint"] == f"proxy.{ns}.svc:3128"
    objects = labelled_objects(cluster, name)
    assert names(objects, "Namespace") == {ns}
    assert names(objects, "Deployment") == {"proxy", "antivirus", "logstore"}
    assert {"default-deny", "proxy-ingress-clients"} <= names(objects, "NetworkPolicy")
    assert names(objects, "ResourceQuota") == {"tenant-quota"}
    assert names(objects, "LimitRange") == {"tenant-limits"}
    assert names(objects, "PersistentVolumeClaim") == {"logstore-data"}
    assert {"proxy", "antivirus", "logstore"} <= names(objects, "Service")
    wait_event(cluster, name, "Created", f"Namespace/{ns}")
    ready_since = condition(body, "Ready")["lastTransitionTime"]

    # Sizing: the quota follows the declared load.
    quota_before = cluster.kubectl_json("get", "resourcequota", "tenant-quota", "-n", ns)["spec"]
    patch_spec(cluster, name, {"sizing": {"endpoints": 5000, "requestsPerSecond": 2000}})
    body = wait_phase(cluster, name, "Ready", generation=2, timeout=120)
    quota_after = cluster.kubectl_json("get", "resourcequota", "tenant-quota", "-n", ns)["spec"]
    assert quota_after != quota_before
    assert (
        body["status"]["sizing"]["proxyReplicas"]
        == deployment(cluster, ns, "proxy")["spec"]["replicas"]
    )
    assert all(c["observedGeneration"] == 2 for c in body["status"]["conditions"])
    wait_event(cluster, name, "Updated", "ResourceQuota")

    # Lists: the config changes, so the pod template's config digest changes (pods roll).
    digest = "swg.dev/config-digest"
    before = deployment(cluster, ns, "proxy")["spec"]["template"]["metadata"]["annotations"][digest]
    patch_spec(cluster, name, {"urlFiltering": {"deny": {"domains": [".blocked.example"]}}})
    wait_phase(cluster, name, "Ready", generation=3, timeout=120)
    after = deployment(cluster, ns, "proxy")["spec"]["template"]["metadata"]["annotations"][digest]
    assert after != before

    # Anti-virus off: its objects are pruned, the tenant stays Ready; on: they come back.
    patch_spec(cluster, name, {"antivirus": {"enabled": False}})
    body = wait_phase(cluster, name, "Ready", generation=4, timeout=120)
    assert condition(body, "AntivirusAvailable")["reason"] == "Disabled"
    objects = labelled_objects(cluster, name)
    assert "antivirus" not in names(objects, "Deployment")
    assert "antivirus" not in names(objects, "Service")
    assert names(objects, "PersistentVolumeClaim") == {"logstore-data"}
    wait_event(cluster, name, "Pruned", "Deployment/" + ns + "/antivirus")
    patch_spec(cluster, name, {"antivirus": {"enabled": True}})
    body = wait_phase(cluster, name, "Ready", generation=5, timeout=120)
    assert "antivirus" in names(labelled_objects(cluster, name), "Deployment")
    assert condition(body, "AntivirusAvailable")["status"] == "True"
    assert condition(body, "SpecValid")["lastTransitionTime"] <= ready_since
    # Five spec changes, and kopf patched the tenant only for its finalizer: the purge days
    # the operator handled are in the status it writes anyway, no last-handled annotation.
    assert body["metadata"]["finalizers"] == ["swg.dev/purge"]
    assert body["status"]["purgeAfterDays"] == 90
    kept = [a for a in body["metadata"].get("annotations") or {} if a.startswith("swg.dev/")]
    assert kept == [], kept


def test_invalid_spec_is_stalled_naming_the_field(
    prepared: Cluster, operator: OperatorProcess, tenant_name: str
) -> None:
    cluster, name = prepared, tenant_name
    # The CRD accepts any category name; only the operator knows the catalogue.
    cluster.apply(tenant_manifest(name, urlFiltering={"blockedCategories": ["no-such-category"]}))
    body = wait_until(
        lambda: (
            (b := get_tenant(cluster, name))
            and condition(b, "Stalled").get("status") == "True"
            and b
        ),
        timeout=60,
        what="Stalled",
    )
    assert "spec.urlFiltering" in condition(body, "Stalled")["message"]
    assert condition(body, "SpecValid")["status"] == "False"
    assert body["status"]["observedGeneration"] == 1
    patch_spec(cluster, name, {"urlFiltering": {"blockedCategories": ["malware"]}})
    body = wait_phase(cluster, name, "Ready", generation=2, timeout=120)
    assert condition(body, "SpecValid")["status"] == "True"


def test_drift_is_repaired_and_announced(
    prepared: Cluster, operator: OperatorProcess, tenant_name: str
) -> None:
    cluster, name, ns = prepared, tenant_name, f"swg-{tenant_name}"
    cluster.apply(tenant_manifest(name))
    wait_phase(cluster, name, "Ready", generation=1)
    expected = labelled_objects(cluster, name)

    cluster.kubectl("delete", "networkpolicy", "default-deny", "-n", ns)
    wait_event(cluster, name, "Restored", f"NetworkPolicy/{ns}/default-deny")
    assert f"NetworkPolicy/{ns}/default-deny" in labelled_objects(cluster, name)

    quota = cluster.kubectl_json("get", "resourcequota", "tenant-quota", "-n", ns)["spec"]["hard"]
    cluster.kubectl(
        "patch",
        "resourcequota",
        "tenant-quota",
        "-n",
        ns,
        "--type=merge",
        "-p",
        '{"spec":{"hard":{"pods":"999"}}}',
    )
    wait_event(cluster, name, "Reverted", f"ResourceQuota/{ns}/tenant-quota")
    restored = cluster.kubectl_json("get", "resourcequota", "tenant-quota", "-n", ns)["spec"][
        "hard"
    ]
    assert restored["pods"] == quota["pods"]

    cluster.kubectl("delete", "service", "proxy", "-n", ns)
    wait_event(cluster, name, "Restored", f"Service/{ns}/proxy")
    body = wait_phase(cluster, name, "Ready", generation=1)
    assert labelled_objects(cluster, name) == expected
    assert body["status"]["observedGeneration"] == 1
    metrics = operator.metrics()
    assert metrics['swg_operator_drift_repairs_total{kind="NetworkPolicy"}'] >= 1
    assert metrics['swg_operator_drift_repairs_total{kind="Service"}'] >= 1


def test_an_idle_tenant_costs_no_api_write(
    prepared: Cluster, operator: OperatorProcess, tenant_name: str
) -> None:
    """A full reconcile of a tenant whose objects are as desired writes nothing (the metric
    counts only the operator adapter's requests; kopf's own bookkeeping is not in it)."""
    cluster, name = prepared, tenant_name
    cluster.apply(tenant_manifest(name))
    wait_phase(cluster, name, "Ready", generation=1)

    def writes() -> float:
        return sum(
            v
            for k, v in operator.metrics().items()
            if k.startswith("swg_operator_api_requests_total") and 'verb="get"' not in k
        )

    def ok_reconciles() -> float:
        return operator.metrics().get('swg_operator_reconciles_total{result="ok"}', 0.0)

    seen: list[float] = []

    def settled() -> float | None:  # two equal readings in a row: nothing is being written
        seen.append(writes())
        return seen[-1] if len(seen) > 1 and seen[-1] == seen[-2] else None

    before = wait_until(settled, timeout=60, what="writes settle", interval=2.0)
    reconciles = ok_reconciles()
    cluster.kubectl("label", "swg", name, "e2e.swg.dev/touched=yes")  # an update event
    wait_until(lambda: ok_reconciles() > reconciles, timeout=30, what="a reconcile ran")
    assert writes() == before


def test_suspend_and_resume(prepared: Cluster, operator: OperatorProcess, tenant_name: str) -> None:
    cluster, name, ns = prepared, tenant_name, f"swg-{tenant_name}"
    cluster.apply(tenant_manifest(name))
    wait_phase(cluster, name, "Ready", generation=1)
    patch_spec(cluster, name, {"suspended": True})
    body = wait_phase(cluster, name, "Suspended", generation=2)
    assert condition(body, "Ready")["reason"] == "Suspended"
    assert deployment(cluster, ns, "proxy")["spec"]["replicas"] == 0
    assert deployment(cluster, ns, "antivirus")["spec"]["replicas"] == 0
    assert "logstore-data" in names(labelled_objects(cluster, name), "PersistentVolumeClaim")
    patch_spec(cluster, name, {"suspended": False})
    body = wait_phase(cluster, name, "Ready", generation=3, timeout=120)
    assert (
        deployment(cluster, ns, "proxy")["spec"]["replicas"]
        == body["status"]["sizing"]["proxyReplicas"]
    )


def _mirror(cluster: Cluster, ns: str) -> dict[str, str]:
    found = cluster.kubectl(
        "get", "configmap", "tenant-status", "-n", ns, "-o", "json", check=False
    ).stdout
    return dict(json.loads(found)["data"]) if found.strip() else {}


def test_the_admins_see_the_status_and_the_notices_in_their_namespace(
    prepared: Cluster, operator: OperatorProcess, tenant_name: str
) -> None:
    """The status mirror follows the status (phase, generation, conditions), and the change
    notices are posted in the tenant namespace too."""
    cluster, name, ns = prepared, tenant_name, f"swg-{tenant_name}"
    cluster.apply(tenant_manifest(name))
    body = wait_phase(cluster, name, "Ready", generation=1)

    def mirrored(phase: str, generation: int) -> dict[str, str] | None:
        data = _mirror(cluster, ns)
        wanted = data.get("phase") == phase and data.get("observedGeneration") == str(generation)
        return data if wanted else None

    data = wait_until(lambda: mirrored("Ready", 1), timeout=30, what="the mirror Ready")
    assert data["proxyEndpoint"] == body["status"]["proxyEndpoint"]
    assert data["sizing.proxyReplicas"] == str(body["status"]["sizing"]["proxyReplicas"])
    conditions = {c["type"]: c for c in json.loads(data["conditions"])}
    for stored in body["status"]["conditions"]:
        mirrored_condition = conditions[stored["type"]]
        for field in ("status", "reason", "message", "lastTransitionTime"):
            assert mirrored_condition[field] == stored[field], (stored["type"], field)
    patch_spec(cluster, name, {"suspended": True})
    wait_phase(cluster, name, "Suspended", generation=2)
    wait_until(lambda: mirrored("Suspended", 2), timeout=30, what="the mirror Suspended")

    def notices() -> list[dict[str, Any]]:
        events = cluster.kubectl_json("get", "events", "-n", ns)["items"]
        return [e for e in events if e["involvedObject"].get("name") == "tenant-status"]

    found = wait_until(
        lambda: (
            ((n := notices()) and {"Created", "Updated"} <= {e["reason"] for e in n} and n) or None
        ),
        timeout=30,
        what=f"change notices in {ns}",
    )
    assert all(e["involvedObject"]["kind"] == "ConfigMap" for e in found)


def total(samples: dict[str, float], metric: str) -> float:
    return sum(value for key, value in samples.items() if key.split("{")[0] == metric)


def settled(operator: OperatorProcess) -> dict[str, float]:
    """The operator's metrics once its request count holds still (the reconcile that wrote
    `Ready` still mirrors it into the tenant namespace)."""
    seen: list[float] = []

    def probe() -> dict[str, float] | None:
        samples = operator.metrics()
        seen.append(total(samples, "swg_operator_api_requests_total"))
        return samples if len(seen) >= 3 and seen[-1] == seen[-3] else None

    return wait_until(probe, timeout=30, interval=1.0, what="the operator's requests to settle")


def test_a_new_tenant_gets_no_drift_notice(
    prepared: Cluster, operator: OperatorProcess, tenant_name: str
) -> None:
    """The API server defaults fields of the new objects (a claim's class); none of that reads
    as a change by hand."""
    prepared.apply(tenant_manifest(tenant_name))
    wait_phase(prepared, tenant_name, "Ready", generation=1)
    reasons = [event.get("reason") for event in tenant_events(prepared, tenant_name)]
    assert "Created" in reasons
    assert "Reverted" not in reasons, reasons
    assert "Restored" not in reasons, reasons


def test_a_reconcile_of_an_unchanged_tenant_makes_no_request(
    prepared: Cluster, operator: OperatorProcess, tenant_name: str
) -> None:
    prepared.apply(tenant_manifest(tenant_name))
    wait_phase(prepared, tenant_name, "Ready", generation=1)
    before = settled(operator)
    reconciles = total(before, "swg_operator_reconciles_total")
    # A label is not in the spec: the tenant's desired state is the same, and so are its
    # objects, but it is an event on the tenant, so it asks for a reconcile.
    prepared.kubectl("label", "swg", tenant_name, "swg.test/touched=yes", "--overwrite")
    wait_until(
        lambda: total(operator.metrics(), "swg_operator_reconciles_total") > reconciles or None,
        timeout=30,
        what="a reconcile after the label change",
    )
    after = operator.metrics()
    requests = total(after, "swg_operator_api_requests_total")
    assert requests == total(before, "swg_operator_api_requests_total"), operator.log_tail()
