"""What a tenant's admins see in their namespace: the status mirror (`render.status_mirror`),
the change notices posted there, and the upgrade from the Role earlier versions gave them."""

from __future__ import annotations

import asyncio
import copy
import datetime
import json
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fakes import FakeKube, make_available
from reconcile_support import fake_cluster, stored_tenant
from swg_operator.api import (
    CancellationStatus,
    ComputedSizing,
    Condition,
    OperatorSettings,
    SecureWebGatewayStatus,
)
from swg_operator.kube.kinds import TENANT
from swg_operator.reconcile.loop import Context, reconcile
from swg_operator.reconcile.purge import NotYet, cancel_and_purge
from swg_operator.render.status_mirror import (
    INTERNAL_ERROR_MESSAGE,
    read_status_data,
    status_data,
    tenant_status_config_map,
)

SETTINGS = OperatorSettings()
NOW = datetime.datetime(2026, 1, 1, 12, 0, tzinfo=datetime.UTC)
NS = "swg-acme"
CONFIG_MAP_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")


def _status(**extra: Any) -> SecureWebGatewayStatus:
    fields: dict[str, Any] = {
        "observed_generation": 3,
        "phase": "Ready",
        "namespace": NS,
        "proxy_endpoint": "proxy.swg-acme.svc:3128",
        "sizing": ComputedSizing(
            proxy_replicas=2,
            antivirus_replicas=3,
            quota_cpu="6",
            quota_memory="12Gi",
            log_storage="50Gi",
        ),
        "conditions": (
            Condition(
                type="Ready",
                status="True",
                reason="Ready",
                message="Every object applied, every workload available",
                last_transition_time="2026-01-01T11:00:00Z",
                observed_generation=3,
            ),
            Condition(
                type="Stalled",
                status="False",
                reason="Progressing",
                message="",
                last_transition_time="2026-01-01T10:00:00Z",
            ),
        ),
    }
    fields.update(extra)
    return SecureWebGatewayStatus(**fields)


# --- the mirror, pure ----------------------------------------------------------------------------


def test_the_mirror_holds_the_documented_keys() -> None:
    data = status_data("acme", _status())
    assert {k: v for k, v in data.items() if k != "conditions"} == {
        "tenant": "acme",
        "phase": "Ready",
        "observedGeneration": "3",
        "proxyEndpoint": "proxy.swg-acme.svc:3128",
        "sizing.proxyReplicas": "2",
        "sizing.antivirusReplicas": "3",
        "sizing.quotaCpu": "6",
        "sizing.quotaMemory": "12Gi",
        "sizing.logStorage": "50Gi",
    }
    conditions = json.loads(data["conditions"])
    assert conditions[0] == {
        "type": "Ready",
        "status": "True",
        "reason": "Ready",
        "message": "Every object applied, every workload available",
        "lastTransitionTime": "2026-01-01T11:00:00Z",
    }
    assert len(data["conditions"].splitlines()) == 4  # "[", one condition a line, "]"


def test_the_mirror_carries_the_cancellation_but_not_the_receipt() -> None:
    cancellation = CancellationStatus(
        cancelled_at="2026-01-01T12:00:00Z",
        purge_at="2026-03-02T12:00:00Z",
        legal_hold=True,
        receipt="purge-acme-1234abcd",
    )
    data = status_data("acme", _status(phase="Cancelled", cancellation=cancellation))
    assert data["cancellation.cancelledAt"] == "2026-01-01T12:00:00Z"
    assert data["cancellation.purgeAt"] == "2026-03-02T12:00:00Z"
    assert data["cancellation.legalHold"] == "true"
    assert "purge-acme" not in repr(data)


def test_an_internal_error_reaches_the_admins_as_a_sentence_only() -> None:
    failed = Condition(
        type="Stalled",
        status="True",
        reason="InternalError",
        message="KubeApiError: 403 Forbidden: https://10.0.0.1:6443/api/v1/...",
        last_transition_time="2026-01-01T12:00:00Z",
    )
    data = status_data("acme", _status(phase="Degraded", conditions=(failed,)))
    (condition,) = json.loads(data["conditions"])
    assert condition["reason"] == "InternalError"
    assert condition["message"] == INTERNAL_ERROR_MESSAGE
    assert "10.0.0.1" not in repr(data)


def test_the_mirror_is_a_tenant_object_in_the_tenant_namespace() -> None:
    mirror = tenant_status_config_map("acme", _status(), service_code="SWG-0001")
    assert mirror["metadata"]["name"] == "tenant-status"
    assert mirror["metadata"]["namespace"] == NS
    assert mirror["metadata"]["labels"]["swg.dev/tenant"] == "acme"
    assert mirror["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "swg-operator"


_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)


@settings(max_examples=100)
@given(
    phase=st.sampled_from(["Provisioning", "Ready", "Degraded", "Cancelled"]),
    generation=st.integers(min_value=0, max_value=10**9),
    message=_text,
    endpoint=st.none() | _text,
)
def test_the_mirror_reads_back_as_it_was_written(
    phase: str, generation: int, message: str, endpoint: str | None
) -> None:
    condition = Condition(
        type="Ready",
        status="False",
        reason="Progressing",
        message=message,
        last_transition_time="2026-01-01T12:00:00Z",
    )
    status = _status(
        phase=phase,
        observed_generation=generation,
        proxy_endpoint=endpoint,
        conditions=(condition,),
    )
    data = status_data("acme", status)
    assert all(CONFIG_MAP_KEY.match(key) for key in data)
    back = read_status_data(data)
    assert back["phase"] == phase
    assert back["observedGeneration"] == generation
    assert back.get("proxyEndpoint") == endpoint
    assert back["sizing"]["antivirusReplicas"] == 3
    assert back["conditions"][0]["message"] == message


# --- the loop ------------------------------------------------------------------------------------


def tenant(name: str = "acme", **spec: Any) -> dict[str, Any]:
    admins = [{"kind": "User", "name": "alice@example.test"}]
    return stored_tenant(name, uid=f"{name}-uid", **{"admins": admins, **spec})


def setup(body: dict[str, Any]) -> tuple[FakeKube, Context]:
    return fake_cluster(body, SETTINGS, NOW)


def fresh(kube: FakeKube, name: str = "acme") -> dict[str, Any]:
    found = kube.find("SecureWebGateway", name)
    assert found is not None
    return copy.deepcopy(found)


def reconciled(kube: FakeKube, ctx: Context) -> Any:
    return asyncio.run(reconcile(fresh(kube), ctx=ctx))


def mirrored(kube: FakeKube) -> dict[str, Any]:
    found = kube.find("ConfigMap", "tenant-status", NS)
    assert found is not None, "no status mirror"
    return read_status_data(found["data"])


def test_the_mirror_follows_the_status_and_an_idle_tenant_writes_nothing() -> None:
    kube, ctx = setup(tenant())
    reconciled(kube, ctx)
    assert mirrored(kube)["phase"] == "Provisioning"
    make_available(kube)
    reconciled(kube, ctx)
    status = fresh(kube)["status"]
    mirror = mirrored(kube)
    assert mirror["phase"] == status["phase"] == "Ready"
    assert mirror["observedGeneration"] == status["observedGeneration"]
    assert mirror["proxyEndpoint"] == status["proxyEndpoint"]
    assert mirror["sizing"] == status["sizing"]
    assert [(c["type"], c["status"], c["lastTransitionTime"]) for c in mirror["conditions"]] == [
        (c["type"], c["status"], c["lastTransitionTime"]) for c in status["conditions"]
    ]
    kube.writes.clear()
    outcome = reconciled(kube, ctx)
    assert kube.writes == []
    assert outcome.writes == 0
    # A restarted operator (nothing remembered) writes nothing either.
    ctx2 = Context(kube=kube, settings=SETTINGS, clock=lambda: NOW)
    asyncio.run(reconcile(fresh(kube), ctx=ctx2))
    assert kube.writes == []


def test_the_mirror_is_restored_when_deleted_or_edited_by_hand() -> None:
    kube, ctx = setup(tenant())
    reconciled(kube, ctx)
    make_available(kube)
    reconciled(kube, ctx)
    del kube.objects[("v1", "ConfigMap", NS, "tenant-status")]
    reconciled(kube, ctx)
    assert mirrored(kube)["phase"] == "Ready"
    kube.edit("ConfigMap", "tenant-status", NS)["data"]["phase"] = "Purged"
    kube.writes.clear()
    reconciled(kube, ctx)
    assert kube.writes == [("apply", f"ConfigMap/{NS}/tenant-status")]
    assert mirrored(kube)["phase"] == "Ready"


def test_an_invalid_spec_shows_in_the_mirror_of_an_existing_namespace() -> None:
    kube, ctx = setup(tenant())
    reconciled(kube, ctx)
    body = fresh(kube)
    body["spec"]["sizing"] = {"endpoints": 0, "requestsPerSecond": 1}
    body["metadata"]["generation"] = 2
    kube.objects[(TENANT.api_version, TENANT.kind, None, "acme")] = body
    kube.writes.clear()
    outcome = reconciled(kube, ctx)
    assert outcome.result == "invalid_spec"
    assert ("apply", f"ConfigMap/{NS}/tenant-status") in kube.writes
    stalled = next(c for c in mirrored(kube)["conditions"] if c["type"] == "Stalled")
    assert (stalled["status"], stalled["reason"]) == ("True", "InvalidSpec")
    assert "spec.sizing.endpoints" in stalled["message"]
    kube.writes.clear()
    reconciled(kube, ctx)
    assert kube.writes == []  # still invalid, nothing changed


def test_change_notices_reach_the_tenant_namespace() -> None:
    kube, ctx = setup(tenant())
    reconciled(kube, ctx)
    make_available(kube)
    reconciled(kube, ctx)
    kube.events.clear()
    del kube.objects[next(k for k in kube.objects if k[1] == "NetworkPolicy")]
    reconciled(kube, ctx)
    assert [(e["kind"], e["name"], e["namespace"], e["reason"]) for e in kube.events] == [
        ("SecureWebGateway", "acme", None, "Restored"),
        ("ConfigMap", "tenant-status", NS, "Restored"),
    ]
    assert kube.events[0]["message"] == kube.events[1]["message"]


def test_the_cancellation_shows_in_the_mirror_and_in_the_namespace() -> None:
    kube, ctx = setup(tenant(cancellation={"purgeAfterDays": 30}))
    reconciled(kube, ctx)
    body = fresh(kube)
    body["metadata"]["deletionTimestamp"] = "2026-01-01T12:00:00Z"
    kube.objects[(TENANT.api_version, TENANT.kind, None, "acme")] = body
    with pytest.raises(NotYet):
        asyncio.run(cancel_and_purge(fresh(kube), ctx=ctx))
    mirror = mirrored(kube)
    assert mirror["phase"] == "Cancelled"
    assert mirror["cancellation"]["purgeAt"] == "2026-01-31T12:00:00Z"
    assert "proxyEndpoint" not in mirror
    assert ("Cancelled", NS) in {(e["reason"], e["namespace"]) for e in kube.events}


# --- upgrade from the Role of earlier versions ---------------------------------------------------

OWNED = {"app.kubernetes.io/managed-by": "swg-operator", "swg.dev/tenant": "acme"}


def _legacy(kube: FakeKube, *, labels: dict[str, str]) -> None:
    """What an earlier version left: the namespace, a Role `tenant-reader` and a binding to it
    (named as that version named it: roleRef cannot change, so the new binding is another).
    That version reconciled the tenant into the namespace: its status names it."""
    kube.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS, "labels": OWNED}})
    body = kube.find("SecureWebGateway", "acme")
    assert body is not None
    body["status"] = {"observedGeneration": 1, "phase": "Ready", "namespace": NS}
    kube.put(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "tenant-reader", "namespace": NS, "labels": labels},
            "rules": [{"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]}],
        }
    )
    kube.put(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {
                "name": "admin-user-alice-example-test-0123456789",
                "namespace": NS,
                "labels": OWNED,
            },
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "tenant-reader",
            },
            "subjects": [{"kind": "User", "name": "alice@example.test"}],
        }
    )


def _bindings(kube: FakeKube) -> list[dict[str, Any]]:
    return [o for (_, k, ns, _), o in kube.objects.items() if k == "RoleBinding" and ns == NS]


def test_an_upgrade_replaces_the_admins_role_by_a_binding_to_the_cluster_role() -> None:
    kube, ctx = setup(tenant())
    _legacy(kube, labels=OWNED)
    reconciled(kube, ctx)
    assert kube.find("Role", "tenant-reader", NS) is None
    (binding,) = _bindings(kube)
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "swg-tenant-reader",
    }
    pruned = next(e for e in kube.events if e["reason"] == "Pruned" and e["namespace"] is None)
    assert "Role/swg-acme/tenant-reader" in pruned["message"]
    # Looked up once per tenant and process: later reconciles do not ask again.
    kube.reads.clear()
    reconciled(kube, ctx)
    assert not [r for r in kube.reads if r[1] == "Role"]


def test_a_role_of_that_name_not_labelled_as_the_tenants_is_left_alone() -> None:
    kube, ctx = setup(tenant())
    _legacy(kube, labels={"team": "someone-else"})
    reconciled(kube, ctx)
    assert kube.find("Role", "tenant-reader", NS) is not None
