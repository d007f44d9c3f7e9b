"""The HTTPS-inspection CA through the reconcile against the in-memory `KubeApi`: generated once,
published, read back by name, regenerated when deleted, kept when off, taken by the purge, and
the customer's own CA Secret and custom signatures waited for."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Mapping
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
    proxy_digest,
    published,
    respec,
    run,
    secret_certificate,
    secret_reads,
    setup,
    signatures,
    tenant,
    tls_secret,
)
from swg_operator.kube import KubeApiError
from swg_operator.reconcile.loop import Context, TransientError
from swg_operator.reconcile.purge import NotYet, cancel_and_purge
from swg_operator.reconcile.references import (
    CA_SECRET_NOT_FOUND,
    CUSTOM_SIGNATURES_INVALID,
    CUSTOM_SIGNATURES_NOT_FOUND,
    INSPECTION_CA_UNPUBLISHED,
)
from swg_operator.reconcile.secrets import GeneratedCa

# --- the reconcile with the in-memory API ---------------------------------------------------------


def test_the_ca_is_generated_once_and_published_and_read_back_by_name_only() -> None:
    kube, ctx = setup(tenant(options=INSPECTION))
    run(kube, ctx)
    secret = kube.find("Secret", SECRET, NS)
    assert secret is not None
    assert secret["type"] == "kubernetes.io/tls"
    assert secret["immutable"] is True
    assert set(secret["data"]) == {"tls.crt", "tls.key"}
    assert secret["metadata"]["labels"]["swg.dev/tenant"] == "acme"
    certificate = secret_certificate(kube)
    assert published(kube) == certificate
    assert [e for e in kube.events if "HTTPS-inspection CA" in e["message"]]
    make_available(kube)
    assert run(kube, ctx)["phase"] == "Ready"

    # Another reconcile, and a restarted operator (nothing remembered): the same CA, no write.
    kube.writes.clear()
    run(kube, ctx)
    restarted = Context(kube=kube, settings=SETTINGS, clock=lambda: NOW)
    assert run(kube, restarted)["phase"] == "Ready"
    assert kube.writes == []
    assert secret_certificate(kube) == certificate == published(kube)
    assert {r[0] for r in secret_reads(kube)} == {"get"}  # by name: never a list or watch


def test_a_deleted_ca_secret_is_generated_again_and_rolls_the_proxy() -> None:
    kube, ctx = setup(tenant(options=INSPECTION))
    run(kube, ctx)
    first, digest = secret_certificate(kube), proxy_digest(kube)
    asyncio.run(kube.delete(kube_kind("Secret"), SECRET, namespace=NS))
    later(ctx)
    run(kube, ctx)
    assert secret_certificate(kube) != first
    assert published(kube) == secret_certificate(kube)
    assert proxy_digest(kube) != digest


def test_an_unpublished_certificate_is_reported_not_replaced() -> None:
    kube, ctx = setup(tenant(options=INSPECTION))
    run(kube, ctx)
    make_available(kube)
    run(kube, ctx)
    certificate = secret_certificate(kube)
    asyncio.run(kube.delete(kube_kind("ConfigMap"), CERT_CM, namespace=NS))
    status = run(kube, ctx)
    assert condition(status, "Stalled")["status"] == "True"
    assert condition(status, "Stalled")["reason"] == INSPECTION_CA_UNPUBLISHED
    assert "spec.options.httpsInspection" in condition(status, "Stalled")["message"]
    assert status["phase"] == "Degraded"
    assert secret_certificate(kube) == certificate  # the existing CA is kept
    assert published(kube) is None
    # The remedy the message names: delete the Secret; a new CA is made and published.
    asyncio.run(kube.delete(kube_kind("Secret"), SECRET, namespace=NS))
    later(ctx)
    run(kube, ctx)
    make_available(kube)
    status = run(kube, ctx)
    assert status["phase"] == "Ready"
    assert published(kube) == secret_certificate(kube) != certificate


def test_a_secret_already_in_a_namespace_made_by_hand_is_not_replaced() -> None:
    kube, ctx = setup(tenant(options=INSPECTION))
    kube.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})  # no labels
    kube.put(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": SECRET, "namespace": NS},
            "stringData": {"tls.crt": "theirs", "tls.key": "theirs"},
        }
    )
    status = run(kube, ctx)
    assert secret_certificate(kube) == "theirs"
    assert published(kube) is None
    # The namespace is not the operator's (it did not create it): nothing in it is touched.
    assert condition(status, "Stalled")["reason"] == "NamespaceNotOwned"
    assert not [w for w in kube.writes if f"/{NS}/" in w[1]]


def test_inspection_off_keeps_the_ca_and_on_again_uses_it() -> None:
    kube, ctx = setup(tenant(options=INSPECTION))
    run(kube, ctx)
    certificate = secret_certificate(kube)
    respec(kube, options={})
    run(kube, ctx)
    make_available(kube)
    assert run(kube, ctx)["phase"] == "Ready"
    assert secret_certificate(kube) == certificate == published(kube)
    respec(kube, options=INSPECTION)
    run(kube, ctx)
    make_available(kube)
    assert run(kube, ctx)["phase"] == "Ready"
    assert secret_certificate(kube) == certificate == published(kube)


def test_a_cancelled_tenant_creates_no_ca_and_the_purge_takes_it() -> None:
    kube, ctx = setup(tenant(options=INSPECTION, cancellation={"purgeAfterDays": 0}))
    run(kube, ctx)
    body = kube.find("SecureWebGateway", "acme")
    assert body is not None
    body["metadata"]["deletionTimestamp"] = "2026-01-01T12:00:00Z"
    asyncio.run(kube.delete(kube_kind("Secret"), SECRET, namespace=NS))
    for _ in range(5):
        try:
            asyncio.run(cancel_and_purge(copy.deepcopy(body), ctx=ctx))
        except NotYet:
            body = kube.find("SecureWebGateway", "acme") or body
            continue
        break
    assert kube.find("Secret", SECRET, NS) is None
    # Only the first CA.
    assert not [w for w in kube.writes if w[0] == "create" and w[1].startswith("Secret/")][1:]
    assert kube.find("Namespace", NS) is None
    assert secret_reads(kube) == []


def test_a_missing_ca_secret_of_the_customer_stalls_until_it_exists(ca: GeneratedCa) -> None:
    kube, ctx = setup(tenant(options=OWN_CA))
    run(kube, ctx)
    make_available(kube)
    status = run(kube, ctx)
    assert kube.find("Deployment", "proxy", NS) is not None  # everything else is applied
    assert condition(status, "Stalled")["reason"] == CA_SECRET_NOT_FOUND
    assert "spec.options.httpsInspection.caSecret.name" in condition(status, "Ready")["message"]
    assert kube.find("Secret", "own-ca", NS) is None  # asked with a dry run: nothing stored
    assert kube.find("Secret", SECRET, NS) is None  # and no CA generated for this tenant
    kube.put(tls_secret("own-ca", ca.certificate, ca.key))
    status = run(kube, ctx)
    assert status["phase"] == "Ready"
    assert condition(status, "Stalled")["status"] == "False"
    assert {r[0] for r in secret_reads(kube)} == {"get"}


def test_custom_signatures_missing_then_invalid_then_fine() -> None:
    kube, ctx = setup(tenant(antivirus={"customSignatures": {"name": "sigs"}}))
    run(kube, ctx)
    make_available(kube)
    status = run(kube, ctx)
    assert condition(status, "Stalled")["reason"] == CUSTOM_SIGNATURES_NOT_FOUND
    assert "spec.antivirus.customSignatures.name" in condition(status, "Stalled")["message"]
    assert status["phase"] == "Degraded"
    kube.put({**signatures(**{"notes.txt": "x"}), "apiVersion": "v1"})
    assert condition(run(kube, ctx), "Stalled")["reason"] == CUSTOM_SIGNATURES_INVALID
    kube.put({**signatures(**{"test.ndb": "Test:0:*:414243"}), "apiVersion": "v1"})
    status = run(kube, ctx)
    assert status["phase"] == "Ready"
    # Unlabelled, the customer's ConfigMap is nothing the operator prunes.
    assert kube.find("ConfigMap", "sigs", NS) is not None


class _FailingCertificateApply(FakeKube):
    """The API server refuses (or the operator dies at) the next apply of the certificate."""

    fail_certificate_apply = False
    crash_after_apply: str | None = None

    async def apply(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        name = obj["metadata"]["name"]
        if self.fail_certificate_apply and name == CERT_CM:
            self.fail_certificate_apply = False
            raise KubeApiError(0, "connection lost while applying the certificate")
        stored = await super().apply(obj)
        if self.crash_after_apply == name:
            self.crash_after_apply = None
            raise KubeApiError(0, f"the operator died after applying {name}")
        return stored


@pytest.mark.parametrize("crash_after", ["secret", "certificate"])
def test_the_published_certificate_never_stays_apart_from_the_secret(crash_after: str) -> None:
    """A new CA is published before its Secret is created: whichever write is lost, the next
    reconcile ends with the certificate published being the one in the Secret."""
    kube = _FailingCertificateApply(now=NOW)
    kube.put(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": SETTINGS.operator_namespace}}
    )
    kube.put(tenant(options=INSPECTION))
    ctx = Context(kube=kube, settings=SETTINGS, clock=lambda: NOW)
    run(kube, ctx)
    first = secret_certificate(kube)
    asyncio.run(kube.delete(kube_kind("Secret"), SECRET, namespace=NS))  # rotation by hand
    later(ctx)
    if crash_after == "secret":
        kube.fail_certificate_apply = True
    else:
        kube.crash_after_apply = CERT_CM
    with pytest.raises((TransientError, KubeApiError)):
        run(kube, ctx)
    run(kube, ctx)
    assert kube.find("Secret", SECRET, NS) is not None
    assert secret_certificate(kube) != first
    assert published(kube) == secret_certificate(kube)
    status = run(kube, ctx)
    assert not [c for c in status["conditions"] if c["reason"] == "InspectionCAUnpublished"]
