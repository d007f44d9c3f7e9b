"""The operator manages only a namespace it created for the tenant (create-only, stamped with the
tenant's UID): a namespace that exists without that stamp, the operator's own namespace or one
the platform reserves makes the tenant `Stalled`, and nothing in it is touched or deleted, not
even by the purge."""

from __future__ import annotations

import asyncio
import copy
import datetime
from typing import Any

import pytest

from fakes import FakeKube, watch_cache
from reconcile_support import stored_tenant
from swg_operator.api import OperatorSettings
from swg_operator.kube.kinds import TENANT
from swg_operator.reconcile.loop import Context, reconcile
from swg_operator.reconcile.ownership import TENANT_UID_ANNOTATION
from swg_operator.reconcile.purge import NotYet, cancel_and_purge, receipt_name

SETTINGS = OperatorSettings(operator_namespace="swg-system")
NOW = datetime.datetime(2026, 1, 1, 12, 0, tzinfo=datetime.UTC)
LABELS = {"app.kubernetes.io/managed-by": "swg-operator"}


def tenant(name: str = "acme", uid: str = "1234abcd-0000", **spec: Any) -> dict[str, Any]:
    body = stored_tenant(name, uid=uid, **{"cancellation": {"purgeAfterDays": 0}, **spec})
    body["metadata"]["creationTimestamp"] = "2026-01-01T12:00:00Z"
    return body


def namespace(name: str, **metadata: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, **metadata}}


def config_map(name: str, ns: str, **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns, "labels": dict(labels)},
        "data": {"precious": "yes"},
    }


def setup(*objects: dict[str, Any]) -> tuple[FakeKube, Context]:
    kube = FakeKube(now=NOW)
    kube.put(namespace(SETTINGS.operator_namespace))
    for obj in objects:
        kube.put(obj)
    return kube, Context(kube=kube, settings=SETTINGS, clock=lambda: NOW)


def fresh(kube: FakeKube, name: str = "acme") -> dict[str, Any]:
    found = kube.find("SecureWebGateway", name)
    assert found is not None
    return copy.deepcopy(found)


def stalled(kube: FakeKube, name: str = "acme") -> dict[str, Any]:
    conditions = fresh(kube, name)["status"]["conditions"]
    return next(c for c in conditions if c["type"] == "Stalled")


def writes_in(kube: FakeKube, ns: str) -> list[tuple[str, str]]:
    return [(verb, what) for verb, what in kube.writes if f"/{ns}/" in what or what.endswith(ns)]


def delete_and_purge(kube: FakeKube, ctx: Context, name: str) -> Any:
    body = fresh(kube, name)
    body["metadata"]["deletionTimestamp"] = "2026-01-01T12:00:00Z"
    kube.objects[(TENANT.api_version, TENANT.kind, None, name)] = copy.deepcopy(body)
    kube.server_now = NOW + datetime.timedelta(seconds=1)
    for _ in range(5):
        try:
            return asyncio.run(cancel_and_purge(fresh(kube, name), ctx=ctx))
        except NotYet:
            continue
    raise AssertionError("the purge did not complete")


def test_a_tenant_named_system_never_touches_the_operator_namespace() -> None:
    catalogue = config_map("url-category-ads", "swg-system", **{"swg.dev/url-category": "ads"})
    kube, ctx = setup(tenant("system"), catalogue)
    outcome = asyncio.run(reconcile(fresh(kube, "system"), ctx=ctx))
    condition = stalled(kube, "system")
    assert condition["status"] == "True"
    assert condition["reason"] == "NamespaceReserved"
    assert "swg-system" in condition["message"]
    assert outcome.writes == 0
    assert writes_in(kube, "swg-system") == []
    assert fresh(kube, "system")["status"].get("namespace") is None
    delete_and_purge(kube, ctx, "system")
    assert kube.find("Namespace", "swg-system") is not None
    assert kube.find("ConfigMap", "url-category-ads", "swg-system") is not None
    assert not [w for w in writes_in(kube, "swg-system") if not w[1].startswith("ConfigMap/")]
    assert [w for w in kube.writes if w[0] == "delete"] == []


def test_a_namespace_the_platform_reserves_is_never_managed() -> None:
    settings = OperatorSettings(
        operator_namespace="swg-system", reserved_namespaces=("swg-mirror",)
    )
    kube, _ = setup(tenant("mirror"))
    ctx = Context(kube=kube, settings=settings, clock=lambda: NOW)
    asyncio.run(reconcile(fresh(kube, "mirror"), ctx=ctx))
    assert stalled(kube, "mirror")["reason"] == "NamespaceReserved"
    assert kube.find("Namespace", "swg-mirror") is None


@pytest.mark.parametrize(
    "metadata",
    [
        {},  # created by someone else
        {"labels": {**LABELS, "swg.dev/tenant": "acme"}},  # with the tenant's labels forged
        {  # stamped for another tenant of the same name (deleted and created again)
            "labels": {**LABELS, "swg.dev/tenant": "acme"},
            "annotations": {TENANT_UID_ANNOTATION: "another-uid"},
        },
    ],
    ids=["unlabelled", "forged-labels", "other-uid"],
)
@pytest.mark.parametrize("watched", [False, True], ids=["read", "watched"])
def test_a_namespace_not_created_for_the_tenant_is_left_alone(
    metadata: dict[str, Any], watched: bool
) -> None:
    """Read by name, or (the running operator) from the watch cache, where a namespace that
    is not labelled as the tenant's is not: then the create is refused, and it is read."""
    labels = {**LABELS, "swg.dev/tenant": "acme"}
    kube, ctx = setup(
        tenant(),
        namespace("swg-acme", **metadata),
        config_map("theirs", "swg-acme", **labels),
    )
    if watched:
        ctx.cache = watch_cache(kube, SETTINGS.operator_namespace)
    before = copy.deepcopy(kube.find("Namespace", "swg-acme"))
    outcome = asyncio.run(reconcile(fresh(kube), ctx=ctx))
    if watched and not metadata:  # not in the cache: found by the refused create
        assert ("create", "Namespace//swg-acme") in kube.requests
    condition = stalled(kube)
    assert condition["status"] == "True"
    assert condition["reason"] == "NamespaceNotOwned"
    assert "swg-acme" in condition["message"]
    assert outcome.writes == 0
    assert writes_in(kube, "swg-acme") == []
    assert kube.find("Namespace", "swg-acme") == before
    assert not [e for e in kube.events if e["namespace"] == "swg-acme"]
    final = delete_and_purge(kube, ctx, "acme")
    assert final.phase == "Purged"
    assert kube.find("Namespace", "swg-acme") == before
    assert kube.find("ConfigMap", "theirs", "swg-acme") is not None
    assert writes_in(kube, "swg-acme") == []
    receipt = kube.find("ConfigMap", receipt_name(fresh(kube)), "swg-system")
    assert receipt is not None
    assert "swg-acme" in receipt["data"]["deleted"]
    assert "not created for this tenant" in receipt["data"]["deleted"]


def test_the_namespace_is_created_once_stamped_with_the_tenant_uid() -> None:
    kube, ctx = setup(tenant())
    asyncio.run(reconcile(fresh(kube), ctx=ctx))
    created = kube.find("Namespace", "swg-acme")
    assert created is not None
    assert created["metadata"]["annotations"][TENANT_UID_ANNOTATION] == "1234abcd-0000"
    assert ("create", "Namespace//swg-acme") in kube.writes  # a POST: never over another's
    assert stalled(kube)["status"] == "False"
    # The same name, another tenant (the first one's namespace is still there): not its own.
    del kube.objects[(TENANT.api_version, TENANT.kind, None, "acme")]
    kube.put(tenant(uid="9999ffff-0000"))
    kube.writes.clear()
    asyncio.run(reconcile(fresh(kube), ctx=ctx))
    assert stalled(kube)["reason"] == "NamespaceNotOwned"
    assert writes_in(kube, "swg-acme") == []


def _legacy(kube: FakeKube, *, created: str, status: bool) -> None:
    """A namespace an earlier version created: the tenant's labels, no UID stamp."""
    kube.put(
        namespace(
            "swg-acme",
            labels={**LABELS, "swg.dev/tenant": "acme"},
            creationTimestamp=created,
        )
    )
    if status:
        body = kube.find("SecureWebGateway", "acme")
        assert body is not None
        body["status"] = {"observedGeneration": 1, "phase": "Ready", "namespace": "swg-acme"}


def test_a_namespace_of_an_earlier_version_is_adopted_when_its_tenant_reconciled_into_it() -> None:
    kube, ctx = setup(tenant())
    _legacy(kube, created="2026-01-01T12:00:01Z", status=True)
    asyncio.run(reconcile(fresh(kube), ctx=ctx))
    ns = kube.find("Namespace", "swg-acme")
    assert ns is not None
    assert ns["metadata"]["annotations"][TENANT_UID_ANNOTATION] == "1234abcd-0000"
    assert kube.find("Deployment", "proxy", "swg-acme") is not None
    assert "Adopted" in {e["reason"] for e in kube.events}


@pytest.mark.parametrize(
    ("created", "status"),
    [("2026-01-01T12:00:01Z", False), ("2025-12-31T00:00:00Z", True)],
    ids=["no-status-of-the-tenant", "older-than-the-tenant"],
)
def test_a_labelled_namespace_is_not_adopted_without_the_evidence(
    created: str, status: bool
) -> None:
    kube, ctx = setup(tenant())
    _legacy(kube, created=created, status=status)
    asyncio.run(reconcile(fresh(kube), ctx=ctx))
    assert stalled(kube)["reason"] == "NamespaceNotOwned"
    assert writes_in(kube, "swg-acme") == []
