"""Smoke tests proving the control plane is a real one: admission, controllers, scheduling,
RBAC and validation all act, against the local control plane or any cluster
($SWG_E2E_KUBECONFIG). Every assertion is on an outcome the cluster produced."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from devtools.binaries import pinned_versions

from e2e.cluster import NODES, REGION_LABEL, ZONE_LABEL, Cluster, ControlPlane, wait_until

pytestmark = pytest.mark.cluster

TIMEOUT = 90.0
PAUSE_IMAGE = "registry.k8s.io/pause:3.10"

RESTRICTED_POD_SECURITY: dict[str, Any] = {
    "runAsNonRoot": True,
    "runAsUser": 65532,
    "seccompProfile": {"type": "RuntimeDefault"},
}
RESTRICTED_CONTAINER_SECURITY: dict[str, Any] = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
}
SMALL_RESOURCES = {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "32Mi"}}


def deployment(
    name: str,
    *,
    pod_security: dict[str, Any],
    container_security: dict[str, Any],
    replicas: int = 1,
) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "automountServiceAccountToken": False,
                    "securityContext": pod_security,
                    "containers": [
                        {
                            "name": "main",
                            "image": PAUSE_IMAGE,
                            "securityContext": container_security,
                            "resources": SMALL_RESOURCES,
                        }
                    ],
                },
            },
        },
    }


def compliant_deployment(name: str, *, replicas: int = 1) -> dict[str, Any]:
    return deployment(
        name,
        pod_security=RESTRICTED_POD_SECURITY,
        container_security=RESTRICTED_CONTAINER_SECURITY,
        replicas=replicas,
    )


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for cond in obj.get("status", {}).get("conditions", []):
        if cond["type"] == kind:
            return dict(cond)
    return None


def ready_pods(cluster: Cluster, namespace: str, app: str, count: int) -> list[dict[str, Any]]:
    """Wait until `count` pods of `app` are Running and Ready; return them."""

    seen: list[dict[str, Any]] = []

    def probe() -> list[dict[str, Any]] | None:
        pods = cluster.kubectl_json("get", "pods", "-n", namespace, "-l", f"app={app}")["items"]
        seen[:] = pods
        ready = [
            p
            for p in pods
            if p["status"].get("phase") == "Running"
            and (condition(p, "Ready") or {}).get("status") == "True"
        ]
        return ready if len(ready) == count else None

    def describe() -> list[tuple[str, str | None, object]]:
        return [
            (p["metadata"]["name"], p["spec"].get("nodeName"), p.get("status", {})) for p in seen
        ]

    return wait_until(
        probe, timeout=TIMEOUT, what=f"{count} Running+Ready pods of {app}", describe=describe
    )


def node_names(cluster: Cluster) -> set[str]:
    return {n["metadata"]["name"] for n in cluster.kubectl_json("get", "nodes")["items"]}


def test_restricted_namespace_rejects_privileged_pods_and_runs_compliant_ones(
    cluster: Cluster, make_namespace: Callable[..., str]
) -> None:
    ns = make_namespace(
        "psa",
        labels={
            "pod-security.kubernetes.io/enforce": "restricted",
            "pod-security.kubernetes.io/enforce-version": "latest",
        },
    )

    privileged = deployment(
        "privileged",
        pod_security={},
        container_security={"privileged": True},
    )
    applied = cluster.apply(privileged, namespace=ns)
    # The Deployment itself is admitted with a warning; its pods are what is enforced.
    assert 'would violate PodSecurity "restricted:latest"' in applied.stderr

    def replica_failure() -> dict[str, Any] | None:
        sets = cluster.kubectl_json("get", "replicasets", "-n", ns, "-l", "app=privileged")
        return next((c for rs in sets["items"] if (c := condition(rs, "ReplicaFailure"))), None)

    failure = wait_until(replica_failure, timeout=TIMEOUT, what="ReplicaFailure on the RS")
    assert failure["status"] == "True"
    assert failure["reason"] == "FailedCreate"
    assert 'violates PodSecurity "restricted:latest"' in failure["message"]
    assert "privileged" in failure["message"]
    assert cluster.kubectl_json("get", "pods", "-n", ns, "-l", "app=privileged")["items"] == []

    compliant = cluster.apply(compliant_deployment("compliant"), namespace=ns)
    assert "PodSecurity" not in compliant.stderr
    (pod,) = ready_pods(cluster, ns, "compliant", 1)
    assert pod["spec"]["nodeName"] in node_names(cluster)
    if cluster.local:
        assert pod["spec"]["nodeName"] in {n.name for n in NODES}
    assert pod["status"].get("podIP")
    wait_until(
        lambda: (
            cluster.kubectl_json("get", "deployment", "compliant", "-n", ns)["status"].get(
                "availableReplicas"
            )
            == 1
        ),
        timeout=TIMEOUT,
        what="Deployment compliant available",
    )


def test_resource_quota_usage_is_tracked_and_enforced(cluster: Cluster, namespace: str) -> None:
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": {"name": "compute"},
            "spec": {"hard": {"pods": "2", "requests.cpu": "1", "requests.memory": "1Gi"}},
        },
        namespace=namespace,
    )

    def used() -> dict[str, str] | None:
        quota = cluster.kubectl_json("get", "resourcequota", "compute", "-n", namespace)
        found: dict[str, str] | None = quota.get("status", {}).get("used")
        return found

    # Filled in by the quota controller (kube-controller-manager), not by admission.
    assert wait_until(used, timeout=TIMEOUT, what="quota status.used") == {
        "pods": "0",
        "requests.cpu": "0",
        "requests.memory": "0",
    }

    def pod(name: str, cpu: str) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "labels": {"app": "quota"}},
            "spec": {
                "automountServiceAccountToken": False,
                "containers": [
                    {
                        "name": "main",
                        "image": PAUSE_IMAGE,
                        "resources": {"requests": {"cpu": cpu, "memory": "256Mi"}},
                    }
                ],
            },
        }

    cluster.apply(pod("fits", "600m"), namespace=namespace)
    wait_until(
        lambda: used() == {"pods": "1", "requests.cpu": "600m", "requests.memory": "256Mi"},
        timeout=TIMEOUT,
        what="quota usage counting the first pod",
    )

    refused = cluster.apply(pod("too-much", "600m"), namespace=namespace, check=False)
    assert refused.returncode != 0
    assert "exceeded quota: compute" in refused.stderr
    assert "requests.cpu=600m" in refused.stderr
    missing = cluster.kubectl("get", "pod", "too-much", "-n", namespace, check=False)
    assert "NotFound" in missing.stderr


def test_namespace_deletion_completes(cluster: Cluster, namespace: str) -> None:
    cluster.apply(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "data"}, "data": {"k": "v"}},
        compliant_deployment("workload", replicas=2),
        namespace=namespace,
    )
    ready_pods(cluster, namespace, "workload", 2)

    cluster.kubectl("delete", "namespace", namespace, "--wait=false")

    def gone() -> bool:
        got = cluster.kubectl("get", "namespace", namespace, "-o", "name", check=False)
        return got.returncode != 0 and "NotFound" in got.stderr

    # Pods are deleted by the namespace controller and finalized by kwok's pod-delete stage.
    wait_until(gone, timeout=120.0, what=f"namespace {namespace} gone (not stuck Terminating)")


def test_service_accounts_get_exactly_what_rbac_grants(
    cluster: Cluster,
    make_namespace: Callable[..., str],
    as_service_account: Callable[..., Cluster],
) -> None:
    ns = make_namespace("rbac")
    other = make_namespace("rbac-other")
    cluster.kubectl("create", "configmap", "visible", "-n", ns, "--from-literal=k=v")
    cluster.kubectl("create", "configmap", "elsewhere", "-n", other, "--from-literal=k=v")
    cluster.kubectl("create", "secret", "generic", "hidden", "-n", ns, "--from-literal=k=v")
    cluster.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "configmap-reader"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "reader"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "configmap-reader",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": ns}],
        },
        namespace=ns,
    )
    nobody = as_service_account(ns, "nobody")
    reader = as_service_account(ns, "reader")

    for account, name in ((nobody, "nobody"), (reader, "reader")):
        whoami = account.kubectl_json("auth", "whoami")
        assert whoami["status"]["userInfo"]["username"] == f"system:serviceaccount:{ns}:{name}"

    raw = nobody.kubectl("get", "--raw", f"/api/v1/namespaces/{ns}/configmaps", "-v=6", check=False)
    assert raw.returncode != 0
    assert "403 Forbidden" in raw.stderr
    denied = nobody.kubectl("get", "configmaps", "-n", ns, check=False)
    assert 'cannot list resource "configmaps"' in denied.stderr

    listed = reader.kubectl_json("get", "configmaps", "-n", ns)
    assert "visible" in {cm["metadata"]["name"] for cm in listed["items"]}
    assert reader.kubectl_json("get", "configmap", "visible", "-n", ns)["data"] == {"k": "v"}

    for args, verb, resource in (
        (("get", "secrets", "-n", ns), "list", "secrets"),
        (("get", "secret", "hidden", "-n", ns), "get", "secrets"),
        (("create", "configmap", "new", "-n", ns, "--from-literal=k=v"), "create", "configmaps"),
        (("delete", "configmap", "visible", "-n", ns), "delete", "configmaps"),
        (("get", "configmaps", "-n", other), "list", "configmaps"),
    ):
        result = reader.kubectl(*args, check=False)
        assert result.returncode != 0, args
        assert "forbidden" in result.stderr.lower(), args
        denial = f'"system:serviceaccount:{ns}:reader" cannot {verb} resource "{resource}"'
        assert denial in result.stderr, args
    assert cluster.kubectl("get", "configmap", "visible", "-n", ns, check=False).returncode == 0


def test_server_side_apply_rejects_invalid_objects_naming_the_field(
    cluster: Cluster, namespace: str
) -> None:
    negative = compliant_deployment("negative")
    negative["spec"]["replicas"] = -1
    unknown: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "typo"},
        "dataa": {"k": "v"},
    }
    bad_label: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "bad-label", "labels": {"tier": "not a valid value!"}},
    }
    for manifest, field, message in (
        (negative, "spec.replicas", "must be greater than or equal to 0"),
        (unknown, ".dataa", "field not declared in schema"),
        (bad_label, "metadata.labels", "Invalid value"),
    ):
        result = cluster.apply(manifest, namespace=namespace, check=False)
        assert result.returncode != 0, manifest
        assert field in result.stderr, result.stderr
        assert message in result.stderr, result.stderr
        kind, name = manifest["kind"].lower(), manifest["metadata"]["name"]
        absent = cluster.kubectl("get", kind, name, "-n", namespace, check=False)
        assert "NotFound" in absent.stderr


def test_version_and_nodes_in_two_regions(cluster: Cluster) -> None:
    version = cluster.server_version()
    assert not version.startswith("v0.0.0"), version
    client = cluster.kubectl_json("version", "--client")["clientVersion"]["gitVersion"]
    assert not client.startswith("v0.0.0"), client

    nodes = cluster.kubectl_json("get", "nodes")["items"]
    ready = [n for n in nodes if (condition(n, "Ready") or {}).get("status") == "True"]
    regions = Counter(n["metadata"]["labels"].get(REGION_LABEL) for n in ready)
    if cluster.local:
        expected = pinned_versions()["K8S_VERSION"]
        assert version == expected
        assert client == expected
        assert {n["metadata"]["name"] for n in ready} == {n.name for n in NODES}
        assert regions == Counter(n.region for n in NODES)
        assert len(regions) == 2
        zones = {n["metadata"]["labels"][ZONE_LABEL] for n in ready}
        assert zones == {n.zone for n in NODES}
        assert all(not n["spec"].get("taints") for n in ready)
    else:
        assert len([r for r in regions if r]) >= 2, regions


def test_local_daemons_listen_on_loopback_only_and_up_is_idempotent(cluster: Cluster) -> None:
    if not isinstance(cluster, ControlPlane):
        pytest.skip("checks the local control plane's processes")
    listening = cluster.listening()
    assert set(listening) == {"etcd", "kube-apiserver", "kube-controller-manager",
                              "kube-scheduler", "kwok"}  # fmt: skip
    addresses = [a for addrs in listening.values() for a in addrs]
    assert addresses
    assert all(a.startswith("127.0.0.1:") for a in addresses), listening
    assert f"127.0.0.1:{cluster.ports.apiserver}" in listening["kube-apiserver"]

    pids = {r.name: r.pid for r in cluster.records()}
    assert cluster.start() is False
    assert {r.name: r.pid for r in cluster.records()} == pids


def test_claim_of_the_default_storage_class_binds_and_its_pod_runs(
    cluster: Cluster, namespace: str
) -> None:
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "logs"},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}},
            },
        },
        namespace=namespace,
    )
    workload = compliant_deployment("with-volume")
    pod_spec = workload["spec"]["template"]["spec"]
    pod_spec["volumes"] = [{"name": "logs", "persistentVolumeClaim": {"claimName": "logs"}}]
    pod_spec["containers"][0]["volumeMounts"] = [{"name": "logs", "mountPath": "/logs"}]
    cluster.apply(workload, namespace=namespace)

    ready_pods(cluster, namespace, "with-volume", 1)

    def bound_claim() -> dict[str, Any] | None:
        pvc: dict[str, Any] = cluster.kubectl_json("get", "pvc", "logs", "-n", namespace)
        return pvc if pvc["status"].get("phase") == "Bound" else None

    claim = wait_until(bound_claim, timeout=TIMEOUT, what="PVC logs Bound")
    assert claim["spec"]["storageClassName"]  # filled in by DefaultStorageClass admission
    assert claim["status"]["capacity"]["storage"] == "1Gi"
