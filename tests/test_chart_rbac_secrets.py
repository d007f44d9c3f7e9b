"""What the chart's RBAC lets the operator do with Secrets and the leader Lease: no reading of
Secrets or tenants' logs beyond the operator's own Secrets by name, and the one Lease by its name
(how the needs are derived: test_chart_rbac.py; the recorders: rbac_support.py)."""

from __future__ import annotations

from rbac_scenario import code_needs, recorded
from rbac_support import CLUSTER, OWN, SETTINGS, Need, covered, granted, lease_needs
from swg_operator.naming import access_tls_secret_name, inspection_ca_secret_name
from test_chart import render


def test_nothing_grants_reading_secrets_or_tenant_logs() -> None:
    """Secrets: `create` (the generated inspection CA, the receipts' signing key, and the
    dry-run probe asking whether a Secret the spec names exists), `get` of the generated CA's
    Secret by its name only, and of the signing key's by its name in the operator's namespace."""
    forbidden = {
        "pods/log",
        "pods/exec",
        "pods/attach",
        "pods/portforward",
        "pods/proxy",
    }
    forbidden |= {"services/proxy", "nodes/proxy"}
    for grant in granted(render()):
        assert grant.resource not in forbidden, grant
        if grant.resource == "secrets":
            assert (grant.verb, grant.name, grant.scope) in {
                ("create", "", CLUSTER),
                ("get", inspection_ca_secret_name(), CLUSTER),
                ("get", access_tls_secret_name(), CLUSTER),
                ("get", SETTINGS.receipts.signing_key_secret, OWN),
            }, grant


def test_the_operator_code_reads_one_secret_by_name() -> None:
    """No list or watch (nor patch, delete): Secrets are created, and the generated CA's is
    read back by name to compare it with the published certificate. The customer's CA Secret
    is asked for too, and the refusal of the chart's RBAC is taken in stride."""
    recorder = recorded()
    secrets = {(n.verb, n.name) for n in code_needs() if n.resource == "secrets"}
    assert secrets == {
        ("create", ""),
        ("get", inspection_ca_secret_name()),
        ("get", access_tls_secret_name()),
        ("get", SETTINGS.receipts.signing_key_secret),
    }
    assert {(n.verb, n.name) for n in recorder.refused} == {
        ("get", "own-ca"),
        ("get", "own-listener"),
    }
    assert not [n for n in recorder.refused if covered(n, granted(render()))]


def test_the_leader_lease_is_created_then_read_and_renewed_by_its_name_only() -> None:
    """create (unnamed by nature), get and update by the one name, in the release namespace;
    nothing of leases cluster-wide, no list, watch, patch or delete."""
    grants = {g for g in granted(render()) if g.resource == "leases"}
    assert grants == {
        Need("coordination.k8s.io", "leases", "create", OWN),
        Need("coordination.k8s.io", "leases", "get", OWN, "swg-swg-operator"),
        Need("coordination.k8s.io", "leases", "update", OWN, "swg-swg-operator"),
    }
    assert lease_needs("swg-swg-operator") == grants
    assert not [g for g in granted(render({"leaderElection.enabled": "false"})) if g in grants]
