"""The generated HTTPS-inspection CA and the objects a spec refers to: the pure pieces (renderer,
plan, references, status) and the reconcile end to end against the in-memory `KubeApi`."""

from __future__ import annotations

import asyncio
import base64
import copy
import datetime
from collections.abc import Mapping
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from fakes import FakeKube, make_available
from swg_operator.api import OperatorSettings, parse_spec
from swg_operator.catalogue import Catalogue
from swg_operator.kube import KubeApiError
from swg_operator.labels import CONFIG_DIGEST_ANNOTATION
from swg_operator.reconcile.loop import Context, TransientError, reconcile
from swg_operator.reconcile.plan import ObjectKey, is_retained
from swg_operator.reconcile.purge import NotYet, cancel_and_purge
from swg_operator.reconcile.references import (
    CA_SECRET_NOT_FOUND,
    CUSTOM_SIGNATURES_INVALID,
    CUSTOM_SIGNATURES_NOT_FOUND,
    INSPECTION_CA_UNPUBLISHED,
    ca_secret_problems,
    custom_signatures_problems,
    is_certificate_pem,
    published_certificate,
)
from swg_operator.reconcile.secrets import KEY_BITS, generate_inspection_ca
from swg_operator.reconcile.status import Facts, Unresolved, compute_status
from swg_operator.render import Lifecycle, render_tenant
from swg_operator.render.rbac import reader_rules
from swg_operator.sizing_io import load_capacity

SETTINGS = OperatorSettings()
NOW = datetime.datetime(2026, 1, 1, 12, 0, tzinfo=datetime.UTC)
NS = "swg-acme"
SECRET = "https-inspection-ca"
CERT_CM = "https-inspection-ca-cert"
INSPECTION = {"httpsInspection": {"enabled": True}}


@pytest.fixture(scope="module")
def ca() -> Any:
    """One generated CA for the pure tests (an RSA 3072 key takes a moment)."""
    return generate_inspection_ca(tenant="acme", service_code="SWG-0001", now=NOW)


def tenant(name: str = "acme", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "swg.dev/v1alpha1",
        "kind": "SecureWebGateway",
        "metadata": {"name": name, "uid": "1234abcd-0000", "generation": 1},
        "spec": {
            "serviceCode": "SWG-0001",
            "sizing": {"endpoints": 50, "requestsPerSecond": 20},
            "clients": {"allowedCIDRs": ["192.0.2.0/24"]},
            **spec,
        },
    }


def setup(body: dict[str, Any]) -> tuple[FakeKube, Context]:
    kube = FakeKube(now=NOW)
    kube.put(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": SETTINGS.operator_namespace}}
    )
    kube.put(body)
    return kube, Context(kube=kube, settings=SETTINGS, clock=lambda: NOW)


def run(kube: FakeKube, ctx: Context, name: str = "acme") -> dict[str, Any]:
    body = kube.find("SecureWebGateway", name)
    assert body is not None
    asyncio.run(reconcile(copy.deepcopy(body), ctx=ctx))
    status: dict[str, Any] = copy.deepcopy(kube.find("SecureWebGateway", name) or {})["status"]
    return status


def respec(kube: FakeKube, **spec: Any) -> None:
    body = kube.find("SecureWebGateway", "acme")
    assert body is not None
    body["spec"].update(spec)
    body["metadata"]["generation"] += 1


def condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == kind)


def secret_certificate(kube: FakeKube) -> str:
    secret = kube.find("Secret", SECRET, NS)
    assert secret is not None
    return str(secret["stringData"]["tls.crt"])


def published(kube: FakeKube) -> str | None:
    cm = kube.find("ConfigMap", CERT_CM, NS)
    return None if cm is None else str(cm["data"]["ca.crt"])


def proxy_digest(kube: FakeKube) -> str:
    deployment = kube.find("Deployment", "proxy", NS)
    assert deployment is not None
    return str(deployment["spec"]["template"]["metadata"]["annotations"][CONFIG_DIGEST_ANNOTATION])


def secret_reads(kube: FakeKube) -> list[tuple[str, str, str | None]]:
    return [r for r in kube.reads if r[1] == "Secret"]


# --- the CA itself ------------------------------------------------------------------------------


def test_generated_ca_is_a_ca_with_path_length_zero_named_after_the_tenant(ca: Any) -> None:
    cert = x509.load_pem_x509_certificate(ca.certificate.encode())
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical
    assert constraints.value.ca
    assert constraints.value.path_length == 0
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical
    assert usage.value.key_cert_sign
    assert usage.value.crl_sign
    assert not usage.value.digital_signature
    assert cert.subject == cert.issuer
    subject = cert.subject.rfc4514_string()
    assert "O=acme" in subject
    assert "CN=SWG-0001 HTTPS inspection CA" in subject
    assert cert.not_valid_before_utc <= NOW < cert.not_valid_after_utc
    assert cert.not_valid_after_utc - NOW == datetime.timedelta(days=730)
    key = serialization.load_pem_private_key(ca.key.encode(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    assert key.key_size == KEY_BITS == 3072
    assert key.public_key().public_numbers() == cert.public_key().public_numbers()  # type: ignore[union-attr]
    assert "PRIVATE KEY" not in repr(ca)  # never in a log line by accident
    assert is_certificate_pem(ca.certificate)


def test_two_generated_cas_differ() -> None:
    a = generate_inspection_ca(tenant="acme", service_code="SWG-0001", now=NOW)
    b = generate_inspection_ca(tenant="acme", service_code="SWG-0001", now=NOW)
    assert a.certificate != b.certificate
    assert a.key != b.key


# --- the renderer: deterministic, the certificate passed in --------------------------------------


def _render(spec: dict[str, Any], certificate: str | None = None) -> dict[tuple[str, str], Any]:
    manifests = render_tenant(
        "acme",
        parse_spec(tenant(**spec)["spec"]),
        catalogue=Catalogue(),
        settings=SETTINGS,
        capacity=load_capacity(),
        inspection_ca_certificate=certificate,
    )
    return {(o["kind"], o["metadata"]["name"]): o for o in manifests.objects}


def _configmap_names() -> list[str]:
    """The ConfigMaps the admins' ClusterRole lets them read: by name, nothing else."""
    (rule,) = [r for r in reader_rules() if "configmaps" in r["resources"]]
    assert rule["verbs"] == ["get"]
    return list(rule["resourceNames"])


def test_renderer_publishes_the_certificate_it_is_given_and_nothing_secret(ca: Any) -> None:
    objects = _render({"options": INSPECTION}, ca.certificate)
    cm = objects[("ConfigMap", CERT_CM)]
    assert cm["data"] == {"ca.crt": ca.certificate}
    assert cm["metadata"]["namespace"] == NS
    assert not [o for o in objects.values() if o["kind"] == "Secret"]
    assert ca.key not in repr(objects)
    assert CERT_CM in _configmap_names()
    assert objects == _render({"options": INSPECTION}, ca.certificate)  # deterministic


def test_renderer_without_a_certificate_mounts_the_secret_and_publishes_nothing(ca: Any) -> None:
    objects = _render({"options": INSPECTION})
    assert ("ConfigMap", CERT_CM) not in objects
    volumes = objects[("Deployment", "proxy")]["spec"]["template"]["spec"]["volumes"]
    assert {"name": "inspection-ca", "secret": {"secretName": SECRET, "defaultMode": 0o440}} in (
        volumes
    )
    # The admins may read the certificate once it is published (a rule of their ClusterRole).
    assert CERT_CM in _configmap_names()


def test_a_new_certificate_rolls_the_proxy_pods(ca: Any) -> None:
    other = generate_inspection_ca(tenant="acme", service_code="SWG-0001", now=NOW)

    def digest(certificate: str | None) -> str:
        proxy = _render({"options": INSPECTION}, certificate)[("Deployment", "proxy")]
        return str(proxy["spec"]["template"]["metadata"]["annotations"][CONFIG_DIGEST_ANNOTATION])

    assert len({digest(None), digest(ca.certificate), digest(other.certificate)}) == 3


def test_the_customers_own_ca_gets_no_published_certificate(ca: Any) -> None:
    own = {"httpsInspection": {"enabled": True, "caSecret": {"name": "own-ca"}}}
    objects = _render({"options": own}, ca.certificate)
    assert ("ConfigMap", CERT_CM) not in objects
    off = _render({}, ca.certificate)
    assert ("ConfigMap", CERT_CM) not in off
    # The admins' ClusterRole names the published certificate and the status mirror only:
    # never the customer's CA Secret, nor any other ConfigMap.
    assert sorted(_configmap_names()) == sorted([CERT_CM, "tenant-status"])


def test_only_the_purge_removes_the_published_certificate() -> None:
    assert is_retained(ObjectKey("v1", "ConfigMap", NS, CERT_CM))
    assert not is_retained(ObjectKey("v1", "ConfigMap", NS, "proxy-config"))


# --- references and status (pure) ----------------------------------------------------------------


def test_published_certificate_is_read_from_the_tenant_namespace_only(ca: Any) -> None:
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": CERT_CM, "namespace": NS},
        "data": {"ca.crt": ca.certificate},
    }
    assert published_certificate([cm], NS) == ca.certificate
    assert published_certificate([cm], "swg-other") is None
    mangled = copy.deepcopy(cm)
    mangled["data"]["ca.crt"] = "not a certificate"
    assert published_certificate([mangled], NS) is None
    two = copy.deepcopy(cm)
    two["data"]["ca.crt"] = ca.certificate + ca.certificate
    assert published_certificate([two], NS) is None
    assert not is_certificate_pem(ca.key)


def _signatures(**data: str) -> dict[str, Any]:
    return {"kind": "ConfigMap", "metadata": {"name": "sigs", "namespace": NS}, "data": data}


def test_custom_signatures_must_exist_and_hold_signature_files_only() -> None:
    spec = parse_spec(tenant(antivirus={"customSignatures": {"name": "sigs"}})["spec"])
    missing = custom_signatures_problems(spec, None, namespace=NS)
    assert [u.reason for u in missing] == [CUSTOM_SIGNATURES_NOT_FOUND]
    assert missing[0].message.startswith("spec.antivirus.customSignatures.name: ")
    assert f"{NS}/sigs" in missing[0].message
    assert (
        custom_signatures_problems(spec, _signatures(**{"a.ndb": "x", "b.hsb": "y"}), namespace=NS)
        == ()
    )
    binary = {**_signatures(), "binaryData": {"c.cdb": base64.b64encode(b"x").decode()}}
    assert custom_signatures_problems(spec, binary, namespace=NS) == ()
    for bad in (_signatures(), _signatures(**{"clamd.conf": "x", "a.ndb": "y"})):
        problems = custom_signatures_problems(spec, bad, namespace=NS)
        assert [u.reason for u in problems] == [CUSTOM_SIGNATURES_INVALID]
    off = parse_spec(
        tenant(antivirus={"enabled": False, "customSignatures": {"name": "s"}})["spec"]
    )
    assert custom_signatures_problems(off, None, namespace=NS) == ()


def test_a_missing_ca_secret_names_the_field() -> None:
    spec = parse_spec(
        tenant(options={"httpsInspection": {"enabled": True, "caSecret": {"name": "own"}}})["spec"]
    )
    (problem,) = ca_secret_problems(spec, exists=False, namespace=NS)
    assert problem.reason == CA_SECRET_NOT_FOUND
    assert problem.message.startswith("spec.options.httpsInspection.caSecret.name: ")
    assert ca_secret_problems(spec, exists=True, namespace=NS) == ()
    assert ca_secret_problems(spec, exists=None, namespace=NS) == ()


def test_unresolved_references_stall_an_active_tenant_but_not_a_suspended_one() -> None:
    problems = (Unresolved("CustomSignaturesNotFound", "spec.antivirus...: missing"),)
    status = compute_status(
        Facts(generation=3, mode=Lifecycle.ACTIVE, unresolved=problems), previous=None, now="t"
    )
    by_type = {c.type: c for c in status.conditions}
    assert by_type["Stalled"].status == "True"
    assert by_type["Stalled"].reason == "CustomSignaturesNotFound"
    assert by_type["Ready"].status == "False"
    assert by_type["Reconciling"].status == "False"
    assert by_type["SpecValid"].status == "True"  # the spec is fine; an object is missing
    assert status.phase == "Degraded"
    suspended = compute_status(
        Facts(generation=3, mode=Lifecycle.SUSPENDED, unresolved=problems), previous=None, now="t"
    )
    assert {c.type: c for c in suspended.conditions}["Stalled"].status == "False"
    assert suspended.phase == "Suspended"


# --- the reconcile with the in-memory API ---------------------------------------------------------


def test_the_ca_is_generated_once_and_published_and_never_read_back() -> None:
    kube, ctx = setup(tenant(options=INSPECTION))
    run(kube, ctx)
    secret = kube.find("Secret", SECRET, NS)
    assert secret is not None
    assert secret["type"] == "kubernetes.io/tls"
    assert secret["immutable"] is True
    assert set(secret["stringData"]) == {"tls.crt", "tls.key"}
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
    assert secret_reads(kube) == []  # never a get, list or watch of a Secret


def test_a_deleted_ca_secret_is_generated_again_and_rolls_the_proxy() -> None:
    kube, ctx = setup(tenant(options=INSPECTION))
    run(kube, ctx)
    first, digest = secret_certificate(kube), proxy_digest(kube)
    asyncio.run(kube.delete(kube_kind("Secret"), SECRET, namespace=NS))
    run(kube, ctx)
    assert secret_certificate(kube) != first
    assert published(kube) == secret_certificate(kube)
    assert proxy_digest(kube) != digest


def kube_kind(kind: str) -> Any:
    from swg_operator.kube import kind_of

    return kind_of({"apiVersion": "v1", "kind": kind})


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


def test_a_missing_ca_secret_of_the_customer_stalls_until_it_exists() -> None:
    own = {"httpsInspection": {"enabled": True, "caSecret": {"name": "own-ca"}}}
    kube, ctx = setup(tenant(options=own))
    run(kube, ctx)
    make_available(kube)
    status = run(kube, ctx)
    assert kube.find("Deployment", "proxy", NS) is not None  # everything else is applied
    assert condition(status, "Stalled")["reason"] == CA_SECRET_NOT_FOUND
    assert "spec.options.httpsInspection.caSecret.name" in condition(status, "Ready")["message"]
    assert kube.find("Secret", "own-ca", NS) is None  # asked with a dry run: nothing stored
    assert kube.find("Secret", SECRET, NS) is None  # and no CA generated for this tenant
    kube.put(
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "own-ca", "namespace": NS}}
    )
    status = run(kube, ctx)
    assert status["phase"] == "Ready"
    assert condition(status, "Stalled")["status"] == "False"
    assert secret_reads(kube) == []


def test_custom_signatures_missing_then_invalid_then_fine() -> None:
    kube, ctx = setup(tenant(antivirus={"customSignatures": {"name": "sigs"}}))
    run(kube, ctx)
    make_available(kube)
    status = run(kube, ctx)
    assert condition(status, "Stalled")["reason"] == CUSTOM_SIGNATURES_NOT_FOUND
    assert "spec.antivirus.customSignatures.name" in condition(status, "Stalled")["message"]
    assert status["phase"] == "Degraded"
    kube.put({**_signatures(**{"notes.txt": "x"}), "apiVersion": "v1"})
    assert condition(run(kube, ctx), "Stalled")["reason"] == CUSTOM_SIGNATURES_INVALID
    kube.put({**_signatures(**{"test.ndb": "Test:0:*:414243"}), "apiVersion": "v1"})
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
