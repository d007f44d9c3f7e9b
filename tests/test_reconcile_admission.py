"""Nothing of a tenant exists that its purge would not find: the reconcile creates the tenant's
objects only while the purge finalizer is on the tenant, and reads the tenant again just before
it creates the tenant's namespace.

Without that, a tenant deleted before kopf had put the finalizer on it (or deleted while a
reconcile of an older copy was under way) left its namespace, log volume claim and quota behind
for good: the API server removed the tenant at once and no purge ever ran (found by the chaos
test: `orphan Namespace/swg-chaos-...-08 labelled for tenant chaos-...-08, which is gone`).
"""

from __future__ import annotations

import asyncio
import copy
import datetime
from collections.abc import Callable
from typing import Any

import pytest

from fakes import FakeKube
from reconcile_support import fake_cluster, stored_tenant
from swg_operator.api import FINALIZER, OperatorSettings
from swg_operator.kube.kinds import TENANT
from swg_operator.reconcile.loop import Context, reconcile

SETTINGS = OperatorSettings()
NOW = datetime.datetime(2026, 1, 1, 12, 0, tzinfo=datetime.UTC)
NAMESPACE = "swg-acme"

# A spec whose Secrets the operator generates (the inspection CA, the TLS listener's
# certificate): they are settled in the reconcile's step 2, after step 0 admits the tenant, and
# created after its namespace. A tenant step 0 does not admit gets none of them either.
SECRETS_SPEC: dict[str, Any] = {
    "access": {"hostname": "proxy.acme.example", "tls": {"enabled": True}},
    "options": {"httpsInspection": {"enabled": True}},
}
GENERATED_SECRETS = [
    f"Secret/{NAMESPACE}/https-inspection-ca",
    f"Secret/{NAMESPACE}/proxy-access-tls",
]


def setup(body: dict[str, Any]) -> tuple[FakeKube, Context]:
    return fake_cluster(body, SETTINGS, NOW)


def without_finalizer(body: dict[str, Any]) -> dict[str, Any]:
    body = copy.deepcopy(body)
    body["metadata"].pop("finalizers", None)
    return body


def tenant_objects(kube: FakeKube) -> list[str]:
    return sorted(
        f"{kind}/{ns}/{name}"
        for (_, kind, ns, name) in kube.objects
        if ns == NAMESPACE or (kind == "Namespace" and name == NAMESPACE)
    )


def test_the_tenants_of_the_tests_carry_the_finalizer_as_kopf_puts_it() -> None:
    assert stored_tenant()["metadata"]["finalizers"] == [FINALIZER]


@pytest.mark.parametrize(
    ("spec", "secrets"),
    [({}, []), (SECRETS_SPEC, GENERATED_SECRETS)],
    ids=["minimal", "generated-secrets"],
)
def test_a_tenant_without_the_purge_finalizer_gets_nothing_until_it_has_it(
    spec: dict[str, Any], secrets: list[str]
) -> None:
    body = without_finalizer(stored_tenant(**spec))
    kube, ctx = setup(body)
    outcome = asyncio.run(reconcile(body, ctx=ctx))
    assert outcome.result == "waiting"
    assert tenant_objects(kube) == []
    assert kube.mutating() == [], "nothing is written, not even the status"
    # kopf puts the finalizer on; its event asks for the next reconcile, which provisions.
    stored = kube.find("SecureWebGateway", "acme")
    assert stored is not None
    stored["metadata"]["finalizers"] = [FINALIZER]
    outcome = asyncio.run(reconcile(copy.deepcopy(stored), ctx=ctx))
    assert outcome.result == "ok"
    assert f"Namespace/None/{NAMESPACE}" in tenant_objects(kube)
    assert f"PersistentVolumeClaim/{NAMESPACE}/logstore-data" in tenant_objects(kube)
    assert [o for o in tenant_objects(kube) if o.startswith("Secret/")] == secrets


def _deleted(stored: dict[str, Any]) -> None:
    stored["metadata"]["deleted"] = True


def _being_deleted(stored: dict[str, Any]) -> None:
    stored["metadata"]["deletionTimestamp"] = "2026-01-01T11:59:00Z"


def _made_again(stored: dict[str, Any]) -> None:
    stored["metadata"]["uid"] = "another-tenant-of-that-name"


@pytest.mark.parametrize(
    "since",
    [_deleted, _being_deleted, _made_again],
    ids=["gone", "being-deleted", "made-again-under-a-new-uid"],
)
@pytest.mark.parametrize("spec", [{}, SECRETS_SPEC], ids=["minimal", "generated-secrets"])
def test_a_copy_older_than_a_deletion_creates_nothing(
    since: Callable[[dict[str, Any]], None], spec: dict[str, Any]
) -> None:
    """The reconcile holds a copy from before the deletion (deleted before the finalizer was on,
    or purged and released since, or made again under the same name)."""
    body = stored_tenant(**spec)
    kube, ctx = setup(body)
    stored = kube.find("SecureWebGateway", "acme")
    assert stored is not None
    since(stored)
    if stored["metadata"].pop("deleted", False):
        asyncio.run(kube.delete(TENANT, "acme"))
    kube.requests.clear()
    outcome = asyncio.run(reconcile(body, ctx=ctx))
    assert outcome.result == "waiting"
    assert tenant_objects(kube) == []
    assert kube.mutating() == []


def test_a_cancelled_tenant_that_never_had_a_namespace_gets_none_but_its_deadline() -> None:
    """Created and deleted before its first reconcile: nothing to keep for export, so nothing is
    made for the purge to delete; the cancellation is stamped all the same."""
    body = stored_tenant(cancellation={"purgeAfterDays": 90})
    body["metadata"]["deletionTimestamp"] = "2026-01-01T11:59:00Z"
    kube, ctx = setup(body)
    outcome = asyncio.run(reconcile(body, ctx=ctx))
    assert tenant_objects(kube) == []
    assert outcome.deadline is not None
    assert outcome.status.cancellation is not None
    assert outcome.status.cancellation.purge_at == "2026-04-01T11:59:00Z"


def test_the_namespace_is_made_once_the_tenant_read_again_is_the_same() -> None:
    """The read again costs one GET, only when the namespace is to be created."""
    body = stored_tenant()
    kube, ctx = setup(body)
    asyncio.run(reconcile(body, ctx=ctx))
    assert ("get", "SecureWebGateway//acme") in kube.requests
    assert f"Namespace/None/{NAMESPACE}" in tenant_objects(kube)
    kube.requests.clear()
    stored = kube.find("SecureWebGateway", "acme")
    assert stored is not None
    asyncio.run(reconcile(copy.deepcopy(stored), ctx=ctx))
    assert ("get", "SecureWebGateway//acme") not in kube.requests


def test_an_admitted_tenant_gets_both_generated_secrets_after_its_namespace() -> None:
    body = stored_tenant(**SECRETS_SPEC)
    kube, ctx = setup(body)
    assert asyncio.run(reconcile(body, ctx=ctx)).result == "ok"
    assert f"ConfigMap/{NAMESPACE}/proxy-access-tls-cert" in tenant_objects(kube)
    writes = kube.mutating()
    namespace_at = writes.index(("create", f"Namespace//{NAMESPACE}"))
    secrets = [(verb, what) for verb, what in writes if what.startswith("Secret/")]
    assert sorted(what for _, what in secrets) == GENERATED_SECRETS, secrets
    assert min(writes.index(write) for write in secrets) > namespace_at, writes
