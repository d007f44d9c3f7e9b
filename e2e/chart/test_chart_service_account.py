"""What the chart's ServiceAccount may and may not do (ISO/IEC 27017 15.1.1), asked of the API
server with `kubectl auth can-i` and server-side dry runs."""

from __future__ import annotations

import re
import subprocess
from typing import Any

import pytest
import yaml

from e2e.chart.support import (
    TENANT_READER,
    ChartOperator,
    Release,
    can,
)
from e2e.cluster import Cluster, unique_name

pytestmark = pytest.mark.cluster


CANNOT = [
    ("get", "secrets", "kube-system"),
    ("list", "secrets", "kube-system"),
    ("list", "secrets", None),
    ("watch", "secrets", None),
    ("get", "secrets", None),
    ("patch", "secrets", None),
    ("update", "secrets", None),
    ("delete", "secrets", None),
    ("get", "pods/log", None),
    ("create", "pods/exec", None),
    ("create", "pods/attach", None),
    ("create", "pods/portforward", None),
    ("get", "services/proxy", None),
    ("get", "pods/proxy", None),
    ("get", "nodes/proxy", None),
    ("create", "pods", None),
    ("create", "serviceaccounts/token", None),
    ("create", "clusterrolebindings", None),
    ("create", "clusterroles", None),
    ("escalate", "clusterroles", None),
    ("bind", "clusterroles", None),
    ("create", "roles", None),
    ("patch", "roles", None),
    ("escalate", "roles", None),
    ("bind", "roles", None),
    ("impersonate", "users", None),
    ("delete", "customresourcedefinitions", None),
    ("*", "*", None),
]


@pytest.mark.parametrize(
    ("verb", "resource", "namespace"),
    CANNOT,
    ids=[f"{v} {r} {n or 'any'}" for v, r, n in CANNOT],
)
def test_service_account_cannot(
    operator: ChartOperator, verb: str, resource: str, namespace: str | None
) -> None:
    # `can-i VERB TYPE/NAME` reads "pods/log" as the pod named log: subresources go apart.
    kind, _, subresource = resource.partition("/")
    args = ["auth", "can-i", verb, kind]
    if subresource:
        args.append(f"--subresource={subresource}")
    args += ["-n", namespace] if namespace else ["--all-namespaces"]
    result = operator.sa_cluster.kubectl(*args, check=False)
    assert result.stdout.strip() == "no", f"the operator's ServiceAccount can {verb} {resource}"


def test_can_i_answers_yes_for_a_right_the_operator_holds(
    operator: ChartOperator,
) -> None:
    """Control for the checks above: the same can-i calls answer yes where a right exists."""
    result = operator.sa_cluster.kubectl(
        "auth", "can-i", "create", "deployments", "-n", "swg-x", check=False
    )
    assert result.stdout.strip() == "yes"


def test_service_account_binds_only_the_tenant_admins_cluster_role(
    operator: ChartOperator,
) -> None:
    """`bind` on the chart's tenant admins' ClusterRole by name; no `escalate` anywhere; of
    Roles only the list and delete of the one earlier versions wrote."""
    sa = operator.sa_cluster
    assert can(sa, "bind", f"clusterroles/{TENANT_READER}") == "yes"
    for role in ("cluster-admin", "admin", "edit", "view"):
        assert can(sa, "bind", f"clusterroles/{role}") == "no", role
    assert can(sa, "escalate", f"clusterroles/{TENANT_READER}") == "no"
    assert can(sa, "escalate", "roles/tenant-reader", "-n", "swg-x") == "no"
    assert can(sa, "bind", "roles/tenant-reader", "-n", "swg-x") == "no"
    assert can(sa, "delete", "roles/tenant-reader", "-n", "swg-x") == "yes"
    assert can(sa, "delete", "roles/other", "-n", "swg-x") == "no"
    assert can(sa, "list", "roles", "-n", "swg-x") == "no"  # only with the name selected


def _binding(namespace: str, role_kind: str, role: str) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": unique_name("probe"), "namespace": namespace},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "mallory"}],
    }


def _apply_as(who: Cluster, obj: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    """Server-side apply, dry run on the server (authorisation and RBAC's escalation check run,
    nothing is stored), as the operator writes."""
    return who.kubectl(
        "apply",
        "--server-side",
        "--dry-run=server",
        "--field-manager=swg-operator",
        "-f",
        "-",
        input=yaml.safe_dump(obj),
        check=False,
    )


def test_service_account_cannot_bind_any_other_role(
    operator_release: Release, operator: ChartOperator
) -> None:
    """The API server refuses the operator a RoleBinding to any ClusterRole but the tenant
    admins' (cluster-admin, admin, edit, view) and to a Role granting what it lacks, and it
    cannot write a Role: it holds `bind` on that one ClusterRole only and lacks the rights the
    others grant."""
    sa, namespace = operator.sa_cluster, operator_release.namespace
    allowed = _apply_as(sa, _binding(namespace, "ClusterRole", TENANT_READER))
    assert allowed.returncode == 0, allowed.stderr  # the control: the same request, allowed
    for role in ("cluster-admin", "admin", "edit", "view"):
        refused = _apply_as(sa, _binding(namespace, "ClusterRole", role))
        assert refused.returncode != 0, role
        assert "forbidden" in refused.stderr.lower(), refused.stderr
    # A Role granting what the operator lacks (log reading), made by the cluster's admin.
    readers: dict[str, Any] = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": unique_name("log-readers"), "namespace": namespace},
        "rules": [{"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]}],
    }
    operator_release.cluster.apply(readers)
    refused = _apply_as(sa, _binding(namespace, "Role", readers["metadata"]["name"]))
    assert refused.returncode != 0
    assert "forbidden" in refused.stderr.lower(), refused.stderr
    tenant_role: dict[str, Any] = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "tenant-reader", "namespace": namespace},
        "rules": [{"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]}],
    }
    refused = _apply_as(sa, tenant_role)
    assert refused.returncode != 0
    assert "forbidden" in refused.stderr.lower(), refused.stderr


def test_can_i_list_matches_the_chart(operator_release: Release, operator: ChartOperator) -> None:
    """`kubectl auth can-i --list` in a tenant namespace: no wildcard, no log, and on Secrets
    nothing but `create`, and `get` of the generated CA's and listener certificate's Secrets
    by their names."""
    listing = operator.sa_cluster.kubectl("auth", "can-i", "--list", "-n", "swg-probe").stdout
    rows = [line.split() for line in listing.splitlines()[1:] if line.strip()]
    resources = {row[0] for row in rows}
    assert "*.*" not in resources
    assert not {"pods/log", "services/proxy", "pods/exec"} & resources
    assert {"deployments.apps", "networkpolicies.networking.k8s.io", "namespaces"} <= resources
    secret_verbs = set()
    for row in rows:
        if row[0] == "secrets":  # secrets  []  [names ...]  [verbs ...]
            names, verbs = re.findall(r"\[([^\]]*)\]", " ".join(row[2:]))[:2]
            secret_verbs |= {(verb, f"[{names}]") for verb in verbs.split()}
    assert secret_verbs == {
        ("create", "[]"),
        ("get", "[https-inspection-ca]"),
        ("get", "[proxy-access-tls]"),
    }
    sa = operator.sa_cluster
    assert can(sa, "get", "secrets/https-inspection-ca", "-n", "swg-probe") == "yes"
    assert can(sa, "get", "secrets/proxy-access-tls", "-n", "swg-probe") == "yes"
    assert can(sa, "get", "secrets/own-ca", "-n", "swg-probe") == "no"
