"""The chart's RBAC is exactly what the operator's code uses: no more, no less, no wildcard.

What the operator needs is derived, not listed by hand:
* the reconcile loop and the purge run end to end against the in-memory `KubeApi` fake, whose
  `before` hook notes every request as (API group, resource, verb, scope);
* the kopf handlers are registered as `swg-operator run` registers them, and every resource kopf
  then watches (list + watch) or changes (patch: finalizers, annotations) is read off the registry;
* the leader election runs acquire, renew, a takeover and a release against an in-memory Lease
  wrapped in a recorder; each of its calls is one request whose verb `kube.lease.VERBS` names,
  on the Lease the chart's Deployment passes to `--lease`, in the operator's namespace;
* kopf's own machinery (CRD observation, Events) is the one fixed part, named below;
* reads the operator may do without (a customer's CA Secret: checked when the platform lets the
  operator read it, else only asked whether it exists) are answered 403, as the chart's RBAC
  answers them, and noted apart: they must not be granted, and the code must carry on.

The rendered ClusterRole and Role must grant each of those, and nothing else. The tenant
admins' ClusterRole the chart ships must hold exactly the operator's `render.rbac.reader_rules()`.

The scenario: rbac_scenario.py; the model and the recorders: rbac_support.py; what the chart lets
the operator read of Secrets and Leases: test_chart_rbac_secrets.py.
"""

from __future__ import annotations

from rbac_scenario import code_needs
from rbac_support import CLUSTER, OWN, Need, covered, granted
from swg_operator.naming import legacy_reader_role_name, tenant_reader_cluster_role_name
from swg_operator.render.rbac import reader_rules
from test_chart import render


def test_no_wildcards_and_escalation_only_by_name() -> None:
    for doc in render():
        for rule in doc.get("rules", []) if doc["kind"] in ("ClusterRole", "Role") else []:
            for field in ("apiGroups", "resources", "verbs", "resourceNames"):
                assert "*" not in rule.get(field, []), f"{doc['kind']}: wildcard in {field}"
            assert "nonResourceURLs" not in rule
            if {"escalate", "bind", "impersonate"} & set(rule["verbs"]):
                assert rule.get("resourceNames"), f"unrestricted {rule['verbs']}"
                assert "impersonate" not in rule["verbs"]


def test_no_escalate_and_bind_covers_only_the_tenant_admins_cluster_role() -> None:
    grants = granted(render())
    assert not [g for g in grants if g.verb == "escalate"]
    assert {(g.resource, g.name) for g in grants if g.verb == "bind"} == {
        ("clusterroles", tenant_reader_cluster_role_name())
    }


def test_roles_only_the_legacy_one_by_name() -> None:
    """The operator writes no Role; it finds and deletes the one earlier versions wrote."""
    grants = granted(render())
    assert {(g.verb, g.name) for g in grants if g.resource == "roles"} == {
        ("list", legacy_reader_role_name()),
        ("delete", legacy_reader_role_name()),
    }


def test_the_chart_ships_the_tenant_admins_cluster_role_of_the_code() -> None:
    (role,) = [
        d
        for d in render()
        if d["kind"] == "ClusterRole" and d["metadata"]["name"] == tenant_reader_cluster_role_name()
    ]
    assert role["rules"] == reader_rules()
    assert not [d for d in render({"rbac.create": "false"}) if "ClusterRole" in d["kind"]]


def test_every_need_of_the_code_is_granted() -> None:
    grants = granted(render())
    missing = sorted(n for n in code_needs() if not covered(n, grants))
    assert not missing, "the operator's code needs rights the chart does not grant:\n" + "\n".join(
        map(str, missing)
    )


def test_every_grant_is_needed_by_the_code() -> None:
    needs = code_needs()
    grants = granted(render())
    unused = sorted(g for g in grants if not any(covered(n, [g]) for n in needs))
    assert not unused, "the chart grants rights no code uses:\n" + "\n".join(map(str, unused))
    cluster = {g for g in grants if g.scope == CLUSTER}
    redundant = sorted(
        g
        for g in grants
        if g.scope == OWN and covered(Need(g.group, g.resource, g.verb, OWN), cluster)
    )
    assert not redundant, f"the Role repeats what the ClusterRole grants: {redundant}"
