"""The evidence command and the admins' view of their contract, on a real API server with the
operator as a process.

* `swg-operator evidence` reads a provisioned tenant as the platform team: every check passes
  (or does not apply); the admins' rights are the API server's own SubjectAccessReview answers.
  With the operator stopped (it would repair the drift), deleting the default-deny
  NetworkPolicy fails the isolation check, deleting an admin's RoleBinding fails the access
  check, and the command exits 2; the restarted operator puts both back and the checks pass.
* `kubectl swg status` as a tenant's admin (a ServiceAccount token, declared in the spec as a
  `User`, as an OIDC user would be) shows the contract the operator mirrored for that tenant,
  and is refused (403) another tenant's; `kubectl swg evidence` as that admin reads the mirror
  and reports its own rights.
* Of a tenant cancelled and purged, the evidence judges the purge only: its receipt verifies
  against the operator's public key, and fails once a field of it is changed.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from e2e.cluster import Cluster, unique_name, wait_until
from e2e.operator_process import (
    OperatorProcess,
    forget_tenant,
    get_tenant,
    tenant_manifest,
)
from swg_operator.commands.kubectl import main as kubectl_main
from swg_operator.naming import admin_binding_name, tenant_namespace

pytestmark = pytest.mark.cluster

OPERATOR_NS = "swg-system"
SIGNING_SECRET = "swg-receipt-signing-key"


@pytest.fixture
def tenants(cluster: Cluster) -> Iterator[list[str]]:
    names: list[str] = []
    yield names
    for name in names:
        forget_tenant(cluster, name)


def _evidence(
    capsys: pytest.CaptureFixture[str], kubeconfig: Path, tenant: str
) -> tuple[int, dict[str, Any]]:
    capsys.readouterr()
    code = kubectl_main(["evidence", tenant, "-o", "json", "--kubeconfig", str(kubeconfig)])
    out = capsys.readouterr().out
    return code, json.loads(out)


def _results(doc: dict[str, Any]) -> dict[str, str]:
    return {c["field"]: c["result"] for c in doc["checks"]}


def _ready(cluster: Cluster, name: str) -> None:
    wait_until(
        lambda: ((get_tenant(cluster, name) or {}).get("status") or {}).get("phase") == "Ready",
        timeout=120,
        what=f"tenant {name} Ready",
        describe=lambda: ((get_tenant(cluster, name) or {}).get("status") or {}).get("conditions"),
    )


def _provision(cluster: Cluster, tenants: list[str], prefix: str, **spec: Any) -> str:
    name = unique_name(prefix)
    tenants.append(name)
    cluster.apply(tenant_manifest(name, **spec))
    return name


def test_evidence_passes_on_a_provisioned_tenant_and_fails_once_broken(
    cluster: Cluster,
    operator: OperatorProcess,
    tenants: list[str],
    make_namespace: Callable[..., str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    admin = f"system:serviceaccount:{make_namespace('evidence-admins')}:alice"
    name = _provision(
        cluster,
        tenants,
        "evidence",
        admins=[{"kind": "User", "name": admin}, {"kind": "Group", "name": "evidence-team"}],
        contacts=["ops@acme.example"],
    )
    _provision(cluster, tenants, "evidence-other")  # another tenant the admin must not reach
    _ready(cluster, name)
    namespace = tenant_namespace(name)

    def passing() -> dict[str, Any] | None:
        code, doc = _evidence(capsys, cluster.kubeconfig, name)
        return doc if code == 0 and doc["result"] == "pass" else None

    doc = wait_until(passing, timeout=60, what=f"evidence passing ({operator.log_tail()})")
    assert doc["source"] == "SecureWebGateway"
    assert _results(doc) == {
        "isolation": "pass",
        "hardening": "pass",
        "access": "pass",
        "quota": "pass",
        "placement": "n/a",  # unit-tested: a region's tenant is not Ready on kwok volumes
        "retention": "pass",
        "inspectionCa": "n/a",
        "notices": "pass",
        "purge": "pass",
    }
    access = next(c for c in doc["checks"] if c["field"] == "access")
    asked = {(r["namespace"], r["verb"], r["resource"], r["name"]): r for r in access["data"]}
    assert asked[(namespace, "get", "configmaps", "tenant-status")]["allowed"] is True
    assert asked[(namespace, "get", "secrets", "")]["allowed"] is False
    assert any(r["namespace"] != namespace and r["allowed"] is False for r in access["data"])
    assert {r["who"] for r in access["data"]} == {f"user {admin}", "group evidence-team"}

    # Broken behind the operator's back (stopped: it would repair the drift at once).
    operator.stop()
    cluster.kubectl("delete", "networkpolicy", "default-deny", "-n", namespace)
    binding = admin_binding_name("User", admin)
    cluster.kubectl("delete", "rolebinding", binding, "-n", namespace)
    code, broken = _evidence(capsys, cluster.kubeconfig, name)
    assert code == 2
    assert broken["result"] == "fail"
    results = _results(broken)
    assert (results["isolation"], results["access"]) == ("fail", "fail")
    details = {c["field"]: c["detail"] for c in broken["checks"]}
    assert "default-deny missing" in details["isolation"]
    assert f"user {admin} may not get configmaps/tenant-status" in details["access"]
    assert results["quota"] == "pass"

    # The operator puts both back: the evidence passes again.
    operator.start()
    wait_until(passing, timeout=90, what=f"evidence passing again ({operator.log_tail()})")


def test_an_admin_sees_the_contract_of_its_tenant_and_nothing_of_another(
    cluster: Cluster,
    operator: OperatorProcess,
    tenants: list[str],
    make_namespace: Callable[..., str],
    as_service_account: Callable[..., Cluster],
    capsys: pytest.CaptureFixture[str],
) -> None:
    identities = make_namespace("contract-admins")
    alice, bob = as_service_account(identities, "alice"), as_service_account(identities, "bob")
    a = _provision(
        cluster,
        tenants,
        "contract-a",
        serviceCode="SWG-A-0001",
        admins=[{"kind": "User", "name": f"system:serviceaccount:{identities}:alice"}],
        urlFiltering={"blockedCategories": ["gambling"], "deny": {"domains": [".bad.example"]}},
        logs={"retentionDays": 30},
    )
    b = _provision(
        cluster,
        tenants,
        "contract-b",
        serviceCode="SWG-B-0002",
        admins=[{"kind": "User", "name": f"system:serviceaccount:{identities}:bob"}],
    )
    for name in (a, b):
        _ready(cluster, name)

    def status(who: Cluster, tenant: str, *args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = kubectl_main(["status", tenant, "--kubeconfig", str(who.kubeconfig), *args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    def contract_shown() -> dict[str, Any] | None:
        code, out, _ = status(alice, a, "-o", "json")
        return json.loads(out) if code == 0 and "contract" in json.loads(out) else None

    shown = wait_until(contract_shown, timeout=60, what="the contract in A's status mirror")
    contract = shown["contract"]
    assert contract["serviceCode"] == "SWG-A-0001"
    assert contract["filtering"]["blockedCategories"] == ["gambling"]
    assert contract["filtering"]["denyDomains"] == 1
    assert contract["logs"]["retentionDays"] == 30
    assert contract["clients"] == {"allowedCIDRs": 1}
    assert "admins" not in json.dumps(contract)  # no identity of anyone in the admins' view
    code, text, _ = status(alice, a)
    assert code == 0
    assert "Service code:        SWG-A-0001" in text
    assert "categories gambling" in text

    # Nothing of another tenant: B's status is refused to A's admin, and the reverse.
    code, out, err = status(alice, b, "-o", "json")
    assert (code, out) == (1, "")
    assert "may not read the status of tenant" in err
    assert "(403)" in err
    assert "SWG-B-0002" not in err
    assert status(bob, a)[0] == 1
    assert status(bob, b)[0] == 0

    # The evidence as the admin: read from the mirror, with the admin's own rights.
    code, doc = _evidence(capsys, alice.kubeconfig, a)
    assert doc["source"] == "tenant-status mirror"
    assert doc["contract"]["serviceCode"] == "SWG-A-0001"
    access = next(c for c in doc["checks"] if c["field"] == "access")
    mine = {(r["verb"], r["resource"], r["name"]): r["allowed"] for r in access["data"]}
    assert mine[("get", "configmaps", "tenant-status")] is True
    assert _results(doc)["isolation"] == "unknown"  # NetworkPolicies are not the admins' to read
    assert code == 0


def test_evidence_of_a_purged_tenant_verifies_its_signed_receipt(
    cluster: Cluster,
    operator: OperatorProcess,
    tenants: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    name = _provision(cluster, tenants, "evidence-purged", cancellation={"purgeAfterDays": 0})
    _ready(cluster, name)
    cluster.kubectl("delete", "swg", name, "--wait=false")
    wait_until(
        lambda: get_tenant(cluster, name) is None,
        timeout=240,
        what=f"the purge of {name} ({operator.log_tail()})",
    )
    secret = cluster.kubectl_json("get", "secret", SIGNING_SECRET, "-n", OPERATOR_NS)
    public = tmp_path / "receipt-signing-key.pub"
    public.write_bytes(base64.b64decode(secret["data"]["ed25519.pub"]))

    def evidence(*args: str) -> tuple[int, dict[str, Any]]:
        capsys.readouterr()
        argv = ["evidence", name, "-o", "json", "--kubeconfig", str(cluster.kubeconfig), *args]
        code = kubectl_main(argv)
        return code, json.loads(capsys.readouterr().out)

    code, doc = evidence("--receipt-public-key", str(public))
    purge = next(c for c in doc["checks"] if c["field"] == "purge")
    assert (code, purge["result"]) == (0, "pass"), purge
    assert "tenant purged" in purge["detail"]
    assert "verified" in purge["detail"]
    assert {c["result"] for c in doc["checks"] if c["field"] != "purge"} == {"n/a"}

    # A receipt changed after signing fails the check.
    (receipt,) = purge["data"]["receipts"]
    cluster.kubectl(
        "patch", "configmap", receipt, "-n", OPERATOR_NS, "--type=merge",
        "-p", '{"data":{"completedAt":"2000-01-01T00:00:00Z"}}',
    )  # fmt: skip
    code, doc = evidence("--receipt-public-key", str(public))
    purge = next(c for c in doc["checks"] if c["field"] == "purge")
    assert (code, purge["result"]) == (2, "fail")
    assert "field completedAt was changed after signing" in purge["detail"]
