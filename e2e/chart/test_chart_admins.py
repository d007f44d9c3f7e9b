"""The tenant admins, bound by the operator with the chart's RBAC: each reads their tenant
and nothing of another's, and an upgrade replaces the Role earlier versions wrote."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from e2e.chart.support import (
    READY_TIMEOUT,
    TENANT_READER,
    ChartOperator,
    Release,
    admin_tenant,
    can,
    condition_status,
    delete_tenants,
    log_without_refusals,
    proxy_can_i,
    wait_ready,
)
from e2e.cluster import service_account_kubeconfig, unique_name, wait_until
from e2e.operator_process import get_tenant

pytestmark = pytest.mark.cluster


def test_tenant_admins_read_their_tenant_and_nothing_of_another(
    operator_release: Release,
    operator: ChartOperator,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Two tenants, one admin each (ServiceAccount identities declared as Users, as an OIDC
    user would be). The operator, with the chart's RBAC alone, binds each admin to the chart's
    ClusterRole in their tenant's namespace; the API server then lets A's admin download A's
    logs (the service-proxy request of `kubectl swg logs`), read A's status (`kubectl swg
    status`) and A's Events, and refuses everything of B."""
    from swg_operator.commands.logs import kubectl_main

    cluster = operator_release.cluster
    log_start = len(operator.log_text())
    identities = unique_name("chart-admins")
    cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": identities}})
    admins = {
        who: cluster.with_kubeconfig(
            service_account_kubeconfig(
                cluster, namespace=identities, name=who, path=tmp_path / f"{who}.kubeconfig"
            )
        )
        for who in ("alice", "bob")
    }
    a, b = unique_name("chart-admin-a"), unique_name("chart-admin-b")
    cluster.apply(admin_tenant(a, f"system:serviceaccount:{identities}:alice"))
    cluster.apply(admin_tenant(b, f"system:serviceaccount:{identities}:bob"))
    try:
        ns_a = wait_ready(cluster, a, operator)["status"]["namespace"]
        ns_b = wait_ready(cluster, b, operator)["status"]["namespace"]
        (binding,) = cluster.kubectl_json(
            "get", "rolebindings", "-n", ns_a, "--show-managed-fields"
        )["items"]
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": TENANT_READER,
        }
        assert {f["manager"] for f in binding["metadata"]["managedFields"]} == {"swg-operator"}
        assert not cluster.kubectl_json("get", "roles", "-n", ns_a)["items"]
        alice, bob = admins["alice"], admins["bob"]

        # Logs: the API server's decision on the plugin's request.
        assert proxy_can_i(alice, ns_a) == "yes"
        assert proxy_can_i(alice, ns_b) == "no"
        assert proxy_can_i(bob, ns_b) == "yes"
        assert proxy_can_i(bob, ns_a) == "no"
        output = str(tmp_path / "logs.ndjson")
        code = kubectl_main(
            ["logs", a, "--kubeconfig", str(bob.kubeconfig), "-q", "--file", output]
        )
        assert code == 1
        assert "(403, refused by the API server" in capsys.readouterr().err

        # Status, through the mirror.
        code = kubectl_main(["status", a, "--kubeconfig", str(alice.kubeconfig)])
        out, err = capsys.readouterr()
        assert code == 0, err
        assert "Phase:           Ready" in out
        assert f"Proxy endpoint:  proxy.{ns_a}.svc:" in out
        code = kubectl_main(["status", b, "--kubeconfig", str(alice.kubeconfig)])
        assert code == 1
        assert "(403)" in capsys.readouterr().err

        # The change notices, in the namespace.
        events = alice.kubectl_json("get", "events", "-n", ns_a)["items"]
        notices = [e for e in events if e["involvedObject"].get("name") == "tenant-status"]
        assert {"Created"} <= {e["reason"] for e in notices}, events
        refused = alice.kubectl("get", "events", "-n", ns_b, check=False)
        assert refused.returncode != 0
        for verb, resource in (("get", "secrets"), ("list", "configmaps"), ("patch", "services")):
            assert can(alice, verb, resource, "-n", ns_a) == "no", (verb, resource)
        assert can(alice, "get", f"securewebgateways.swg.dev/{a}") == "no"
        log_without_refusals(operator, log_start)
    finally:
        delete_tenants(cluster, a, b)
        cluster.kubectl("delete", "namespace", identities, "--wait=false", check=False)


def test_an_upgrade_removes_the_admins_role_of_earlier_versions(
    operator_release: Release, operator: ChartOperator
) -> None:
    """A tenant namespace as an earlier version left it (the tenant's labels but no UID stamp, a
    Role `tenant-reader` and a binding to it; the tenant's status names the namespace): the
    operator, with the chart's RBAC alone, adopts the namespace, finds the Role by name, deletes
    it, and replaces the binding by one to the chart's ClusterRole."""
    cluster = operator_release.cluster
    log_start = len(operator.log_text())
    name = unique_name("chart-upgrade")
    namespace = f"swg-{name}"
    owned = {"app.kubernetes.io/managed-by": "swg-operator", "swg.dev/tenant": name}
    admin = "carol@example.com"
    # The tenant first, with a spec the operator refuses (an unknown URL category), so that
    # this operator creates nothing; then the namespace as the earlier version made it, after
    # the tenant, and the status that version wrote.
    waiting = admin_tenant(name, admin)
    waiting["spec"]["urlFiltering"] = {"blockedCategories": ["no-such-category"]}
    cluster.apply(waiting)
    wait_until(
        lambda: (s := get_tenant(cluster, name)) and condition_status(s, "Stalled") == "True",
        timeout=READY_TIMEOUT,
        what=f"{name} Stalled on its unknown category",
    )
    cluster.apply(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace, "labels": owned}}
    )
    cluster.kubectl(
        "patch",
        "swg",
        name,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": {"namespace": namespace}}),
    )
    cluster.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "tenant-reader", "namespace": namespace, "labels": owned},
            "rules": [{"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]}],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "admin-user-carol-old", "namespace": namespace, "labels": owned},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "tenant-reader",
            },
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": admin}],
        },
    )
    cluster.apply(admin_tenant(name, admin))
    try:
        wait_ready(cluster, name, operator)
        adopted = cluster.kubectl_json("get", "namespace", namespace)
        assert (
            adopted["metadata"]["annotations"]["swg.dev/tenant-uid"]
            == (cluster.kubectl_json("get", "swg", name)["metadata"]["uid"])
        )

        def migrated() -> bool:
            roles = cluster.kubectl_json("get", "roles", "-n", namespace)["items"]
            bindings = cluster.kubectl_json("get", "rolebindings", "-n", namespace)["items"]
            refs = [(b["metadata"]["name"], b["roleRef"]["kind"]) for b in bindings]
            return not roles and len(refs) == 1 and refs[0][1] == "ClusterRole"

        wait_until(migrated, timeout=60, what=f"the Role of {namespace} replaced")
        assert (
            can(cluster, "get", "pods", "--subresource=log", "-n", namespace, "--as", admin)
            == "yes"
        )
        log = log_without_refusals(operator, log_start)
        assert log is None or f"Role/{namespace}/tenant-reader" in log
    finally:
        delete_tenants(cluster, name)
