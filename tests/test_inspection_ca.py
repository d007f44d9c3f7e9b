"""The generated HTTPS-inspection CA and the objects a spec refers to, the pure pieces: the CA
itself, the renderer, references and status. The reconcile end to end against the in-memory
`KubeApi` is in test_inspection_ca_reconcile.py and test_inspection_ca_expiry.py."""

from __future__ import annotations

import base64
import copy
import datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from inspection_support import (
    CERT_CM,
    INSPECTION,
    NOW,
    NS,
    OWN_CA,
    SECRET,
    SETTINGS,
    new_ca,
    tenant,
)
from swg_operator.api import parse_spec
from swg_operator.catalogue import Catalogue
from swg_operator.labels import CONFIG_DIGEST_ANNOTATION
from swg_operator.reconcile.plan import ObjectKey, is_retained
from swg_operator.reconcile.references import (
    CA_SECRET_NOT_FOUND,
    CUSTOM_SIGNATURES_INVALID,
    CUSTOM_SIGNATURES_NOT_FOUND,
    ca_secret_problems,
    custom_signatures_problems,
    is_certificate_pem,
    published_certificate,
)
from swg_operator.reconcile.secrets import KEY_BITS, GeneratedCa
from swg_operator.reconcile.status import Facts, Unresolved, compute_status
from swg_operator.render import Lifecycle, render_tenant
from swg_operator.render.rbac import reader_rules
from swg_operator.sizing_io import load_capacity

# --- the CA itself ------------------------------------------------------------------------------


def test_generated_ca_is_a_ca_with_path_length_zero_named_after_the_tenant(ca: GeneratedCa) -> None:
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
    a = new_ca()
    b = new_ca()
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


def test_renderer_publishes_the_certificate_it_is_given_and_nothing_secret(ca: GeneratedCa) -> None:
    objects = _render({"options": INSPECTION}, ca.certificate)
    cm = objects[("ConfigMap", CERT_CM)]
    assert cm["data"] == {"ca.crt": ca.certificate}
    assert cm["metadata"]["namespace"] == NS
    assert not [o for o in objects.values() if o["kind"] == "Secret"]
    assert ca.key not in repr(objects)
    assert CERT_CM in _configmap_names()
    assert objects == _render({"options": INSPECTION}, ca.certificate)  # deterministic


def test_renderer_without_a_certificate_mounts_the_secret_and_publishes_nothing(
    ca: GeneratedCa,
) -> None:
    objects = _render({"options": INSPECTION})
    assert ("ConfigMap", CERT_CM) not in objects
    volumes = objects[("Deployment", "proxy")]["spec"]["template"]["spec"]["volumes"]
    assert {"name": "inspection-ca", "secret": {"secretName": SECRET, "defaultMode": 0o440}} in (
        volumes
    )
    # The admins may read the certificate once it is published (a rule of their ClusterRole).
    assert CERT_CM in _configmap_names()


def test_a_new_certificate_rolls_the_proxy_pods(ca: GeneratedCa) -> None:
    other = new_ca()

    def digest(certificate: str | None) -> str:
        proxy = _render({"options": INSPECTION}, certificate)[("Deployment", "proxy")]
        return str(proxy["spec"]["template"]["metadata"]["annotations"][CONFIG_DIGEST_ANNOTATION])

    assert len({digest(None), digest(ca.certificate), digest(other.certificate)}) == 3


def test_the_customers_own_ca_gets_no_published_certificate(ca: GeneratedCa) -> None:
    objects = _render({"options": OWN_CA}, ca.certificate)
    assert ("ConfigMap", CERT_CM) not in objects
    off = _render({}, ca.certificate)
    assert ("ConfigMap", CERT_CM) not in off
    # The admins' ClusterRole names the published certificate, the status mirror and the
    # notices only: never the customer's CA Secret, nor any other ConfigMap.
    assert sorted(_configmap_names()) == sorted(
        [CERT_CM, "proxy-access-tls-cert", "tenant-notices", "tenant-status"]
    )


def test_only_the_purge_removes_the_published_certificate() -> None:
    assert is_retained(ObjectKey("v1", "ConfigMap", NS, CERT_CM))
    assert not is_retained(ObjectKey("v1", "ConfigMap", NS, "proxy-config"))


# --- references and status (pure) ----------------------------------------------------------------


def test_published_certificate_is_read_from_the_tenant_namespace_only(ca: GeneratedCa) -> None:
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


def signatures(**data: str) -> dict[str, Any]:
    return {"kind": "ConfigMap", "metadata": {"name": "sigs", "namespace": NS}, "data": data}


def test_custom_signatures_must_exist_and_hold_signature_files_only() -> None:
    spec = parse_spec(tenant(antivirus={"customSignatures": {"name": "sigs"}})["spec"])
    missing = custom_signatures_problems(spec, None, namespace=NS)
    assert [u.reason for u in missing] == [CUSTOM_SIGNATURES_NOT_FOUND]
    assert missing[0].message.startswith("spec.antivirus.customSignatures.name: ")
    assert f"{NS}/sigs" in missing[0].message
    assert (
        custom_signatures_problems(spec, signatures(**{"a.ndb": "x", "b.hsb": "y"}), namespace=NS)
        == ()
    )
    binary = {**signatures(), "binaryData": {"c.cdb": base64.b64encode(b"x").decode()}}
    assert custom_signatures_problems(spec, binary, namespace=NS) == ()
    for bad in (signatures(), signatures(**{"clamd.conf": "x", "a.ndb": "y"})):
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
