"""The published certificate and the CA Secret's pair agree, the Secrets read by name only, and
the CA's expiry warned of and stalled on, through the reconcile against the in-memory `KubeApi`."""

from __future__ import annotations

import asyncio
import datetime
from typing import Any

import pytest

from fakes import FakeKube, make_available
from inspection_support import (
    CERT_CM,
    INSPECTION,
    NOW,
    NS,
    OWN_CA,
    SECRET,
    SETTINGS,
    condition,
    kube_kind,
    later,
    new_ca,
    published,
    run,
    secret_certificate,
    secret_reads,
    setup,
    tenant,
    tls_secret,
)
from swg_operator.kube import KubeApiError
from swg_operator.reconcile.loop import Context
from swg_operator.reconcile.references import (
    CA_SECRET_NOT_FOUND,
)
from swg_operator.reconcile.secret_checks import RECHECK
from swg_operator.reconcile.secrets import GeneratedCa

# --- the published certificate and the Secret's pair agree; the CA's expiry ---------------------


@pytest.mark.parametrize("replaced", ["certificate and key", "key only"])
def test_a_secret_apart_from_the_published_certificate_makes_the_tenant_not_ready(
    ca: GeneratedCa, replaced: str
) -> None:
    """The Secret replaced by hand (or left by an earlier version) with a CA other than the one
    published: HTTPS inspection would present a CA the admins never got."""
    kube, ctx = setup(tenant(options=INSPECTION))
    run(kube, ctx)
    make_available(kube)
    assert run(kube, ctx)["phase"] == "Ready"
    certificate = secret_certificate(kube)
    asyncio.run(kube.delete(kube_kind("Secret"), SECRET, namespace=NS))
    if replaced == "key only":
        kube.put(tls_secret(SECRET, certificate, ca.key))
    else:
        kube.put(tls_secret(SECRET, ca.certificate, ca.key))
    later(ctx)
    status = run(kube, ctx)
    stalled = condition(status, "Stalled")
    assert stalled["status"] == "True"
    assert stalled["reason"] == "InspectionCAMismatch"
    assert f"Secret {NS}/{SECRET}" in stalled["message"]
    assert f"ConfigMap {NS}/{CERT_CM}" in stalled["message"]
    assert condition(status, "Ready")["status"] == "False"
    assert status["phase"] == "Degraded"
    assert published(kube) == certificate  # what the admins have is not taken from them
    # The remedy the message names: delete the Secret, a new CA is made and published.
    asyncio.run(kube.delete(kube_kind("Secret"), SECRET, namespace=NS))
    later(ctx)
    run(kube, ctx)
    make_available(kube)
    status = run(kube, ctx)
    assert status["phase"] == "Ready"
    assert published(kube) == secret_certificate(kube) != certificate


def test_the_generated_secret_is_read_by_name_and_nothing_else_is_read(ca: GeneratedCa) -> None:
    kube, ctx = setup(tenant(options=INSPECTION))
    run(kube, ctx)
    make_available(kube)
    run(kube, ctx)
    # Created by this operator: known to hold the published CA, not read back.
    assert secret_reads(kube) == []
    later(ctx)
    run(kube, ctx)
    assert {r for r in secret_reads(kube)} == {("get", "Secret", NS)}
    assert [w for w in kube.writes if w[1].startswith("Secret/")] == [
        ("create", f"Secret/{NS}/{SECRET}")
    ]


def test_a_customer_ca_whose_key_is_not_its_certificates_is_reported(ca: GeneratedCa) -> None:
    other = new_ca()
    kube, ctx = setup(tenant(options=OWN_CA))
    run(kube, ctx)
    make_available(kube)
    kube.put(tls_secret("own-ca", ca.certificate, other.key))
    status = run(kube, ctx)
    stalled = condition(status, "Stalled")
    assert stalled["reason"] == "CASecretMismatch"
    assert stalled["message"].startswith("spec.options.httpsInspection.caSecret.name: ")
    assert f"Secret {NS}/own-ca" in stalled["message"]
    assert condition(status, "Ready")["status"] == "False"
    kube.put(tls_secret("own-ca", ca.certificate, ca.key))
    later(ctx)
    status = run(kube, ctx)
    assert status["phase"] == "Ready"


class _NoSecretReads(FakeKube):
    """RBAC without `get` on Secrets (a platform that does not let the operator read them)."""

    async def get(self, kind: Any, name: str, *, namespace: str | None = None) -> Any:
        if kind.kind == "Secret":
            raise KubeApiError(403, f'secrets "{name}" is forbidden', reason="Forbidden")
        return await super().get(kind, name, namespace=namespace)


def test_a_customer_ca_the_operator_may_not_read_is_checked_for_existence_only(
    ca: GeneratedCa,
) -> None:
    other = new_ca()
    kube = _NoSecretReads(now=NOW)
    kube.put(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": SETTINGS.operator_namespace}}
    )
    kube.put(tenant(options=OWN_CA))
    ctx = Context(kube=kube, settings=SETTINGS, clock=lambda: NOW)
    run(kube, ctx)
    make_available(kube)
    assert condition(run(kube, ctx), "Stalled")["reason"] == CA_SECRET_NOT_FOUND
    kube.put(tls_secret("own-ca", ca.certificate, other.key))  # not readable: not judged
    assert run(kube, ctx)["phase"] == "Ready"


def test_inspection_ca_expiry_is_judged_from_the_date_passed_in(ca: GeneratedCa) -> None:
    from swg_operator.reconcile.ca_pair import EXPIRY_WARNING, certificate_expiry

    not_after = NOW + datetime.timedelta(days=730)
    assert datetime.timedelta(days=30) == EXPIRY_WARNING
    where = f"ConfigMap {NS}/{CERT_CM}"
    early = certificate_expiry(
        ca.certificate, now=not_after - datetime.timedelta(days=31), where=where
    )
    assert early is not None
    assert not early.expiring
    soon = certificate_expiry(
        ca.certificate, now=not_after - datetime.timedelta(days=29), where=where
    )
    assert soon is not None
    assert soon.expiring
    assert soon.reason == "Expiring"
    assert "2028-01-01T12:00:00Z" in soon.message
    assert where in soon.message
    gone = certificate_expiry(
        ca.certificate, now=not_after + datetime.timedelta(seconds=1), where=where
    )
    assert gone is not None
    assert gone.expiring
    assert gone.reason == "Expired"
    assert certificate_expiry("not a certificate", now=NOW, where=where) is None


def test_a_ca_within_30_days_of_expiry_warns_once_and_an_expired_one_stalls() -> None:
    clock = [NOW]
    kube, _ = setup(tenant(options=INSPECTION))
    ctx = Context(kube=kube, settings=SETTINGS, clock=lambda: clock[0])
    run(kube, ctx)
    make_available(kube)
    status = run(kube, ctx)
    assert status["phase"] == "Ready"
    assert condition(status, "InspectionCAExpiring")["status"] == "False"
    not_after = NOW + datetime.timedelta(days=730)

    clock[0] = not_after - datetime.timedelta(days=29)
    status = run(kube, ctx)
    expiring = condition(status, "InspectionCAExpiring")
    assert expiring["status"] == "True"
    assert expiring["reason"] == "Expiring"
    assert "2028-01-01T12:00:00Z" in expiring["message"]
    assert status["phase"] == "Ready"  # a warning: inspection still works
    warnings = [e for e in kube.events if e["reason"] == "InspectionCAExpiring"]
    assert warnings
    assert all(e["type"] == "Warning" for e in warnings)
    assert "2028-01-01T12:00:00Z" in warnings[0]["message"]
    kube.events.clear()
    kube.writes.clear()
    run(kube, ctx)
    assert not [e for e in kube.events if e["reason"] == "InspectionCAExpiring"]  # once
    assert kube.writes == []

    clock[0] = not_after + datetime.timedelta(hours=1)
    status = run(kube, ctx)
    assert condition(status, "InspectionCAExpiring")["reason"] == "Expired"
    assert condition(status, "Stalled")["reason"] == "InspectionCAExpired"
    assert condition(status, "Ready")["status"] == "False"
    # The documented rotation: delete the Secret; a new CA is made, published, and valid.
    asyncio.run(kube.delete(kube_kind("Secret"), SECRET, namespace=NS))
    clock[0] += RECHECK
    run(kube, ctx)
    make_available(kube)
    status = run(kube, ctx)
    assert status["phase"] == "Ready"
    assert condition(status, "InspectionCAExpiring")["status"] == "False"


def test_a_customer_ca_nearing_expiry_warns_too() -> None:
    theirs = new_ca()
    clock = [NOW]
    kube, _ = setup(tenant(options=OWN_CA))
    ctx = Context(kube=kube, settings=SETTINGS, clock=lambda: clock[0])
    run(kube, ctx)
    kube.put(tls_secret("own-ca", theirs.certificate, theirs.key))
    make_available(kube)
    assert run(kube, ctx)["phase"] == "Ready"
    clock[0] = NOW + datetime.timedelta(days=720)
    status = run(kube, ctx)
    expiring = condition(status, "InspectionCAExpiring")
    assert expiring["status"] == "True"
    assert f"Secret {NS}/own-ca" in expiring["message"]
