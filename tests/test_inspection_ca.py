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
    return base64.b64decode(secret["data"]["tls.crt"]).decode()


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
    # The admins' ClusterRole names the published certificate, the status mirror and the
    # notices only: never the customer's CA Secret, nor any other ConfigMap.
    assert sorted(_configmap_names()) == sorted([CERT_CM, "tenant-notices", "tenant-status"])


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


def test_a_missing_ca_secret_of_the_customer_stalls_until_it_exists(ca: Any) -> None:
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


# --- the published certificate and the Secret's pair agree; the CA's expiry ---------------------


def tls_secret(name: str, certificate: str, key: str) -> dict[str, Any]:
    """A `kubernetes.io/tls` Secret as the API server stores it (data in base64)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": NS},
        "type": "kubernetes.io/tls",
        "data": {
            "tls.crt": base64.b64encode(certificate.encode()).decode(),
            "tls.key": base64.b64encode(key.encode()).decode(),
        },
    }


@pytest.mark.parametrize("replaced", ["certificate and key", "key only"])
def test_a_secret_apart_from_the_published_certificate_makes_the_tenant_not_ready(
    ca: Any, replaced: str
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
    run(kube, ctx)
    make_available(kube)
    status = run(kube, ctx)
    assert status["phase"] == "Ready"
    assert published(kube) == secret_certificate(kube) != certificate


def test_the_generated_secret_is_read_by_name_and_nothing_else_is_read(ca: Any) -> None:
    kube, ctx = setup(tenant(options=INSPECTION))
    run(kube, ctx)
    make_available(kube)
    run(kube, ctx)
    assert {r for r in secret_reads(kube)} == {("get", "Secret", NS)}
    assert [w for w in kube.writes if w[1].startswith("Secret/")] == [
        ("create", f"Secret/{NS}/{SECRET}")
    ]


def test_a_customer_ca_whose_key_is_not_its_certificates_is_reported(ca: Any) -> None:
    own = {"httpsInspection": {"enabled": True, "caSecret": {"name": "own-ca"}}}
    other = generate_inspection_ca(tenant="acme", service_code="SWG-0001", now=NOW)
    kube, ctx = setup(tenant(options=own))
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
    status = run(kube, ctx)
    assert status["phase"] == "Ready"


class _NoSecretReads(FakeKube):
    """RBAC without `get` on Secrets (a platform that does not let the operator read them)."""

    async def get(self, kind: Any, name: str, *, namespace: str | None = None) -> Any:
        if kind.kind == "Secret":
            raise KubeApiError(403, f'secrets "{name}" is forbidden', reason="Forbidden")
        return await super().get(kind, name, namespace=namespace)


def test_a_customer_ca_the_operator_may_not_read_is_checked_for_existence_only(ca: Any) -> None:
    own = {"httpsInspection": {"enabled": True, "caSecret": {"name": "own-ca"}}}
    other = generate_inspection_ca(tenant="acme", service_code="SWG-0001", now=NOW)
    kube = _NoSecretReads(now=NOW)
    kube.put(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": SETTINGS.operator_namespace}}
    )
    kube.put(tenant(options=own))
    ctx = Context(kube=kube, settings=SETTINGS, clock=lambda: NOW)
    run(kube, ctx)
    make_available(kube)
    assert condition(run(kube, ctx), "Stalled")["reason"] == CA_SECRET_NOT_FOUND
    kube.put(tls_secret("own-ca", ca.certificate, other.key))  # not readable: not judged
    assert run(kube, ctx)["phase"] == "Ready"


def test_inspection_ca_expiry_is_judged_from_the_date_passed_in(ca: Any) -> None:
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
    run(kube, ctx)
    make_available(kube)
    status = run(kube, ctx)
    assert status["phase"] == "Ready"
    assert condition(status, "InspectionCAExpiring")["status"] == "False"


def test_a_customer_ca_nearing_expiry_warns_too() -> None:
    own = {"httpsInspection": {"enabled": True, "caSecret": {"name": "own-ca"}}}
    theirs = generate_inspection_ca(tenant="acme", service_code="SWG-0001", now=NOW)
    clock = [NOW]
    kube, _ = setup(tenant(options=own))
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
