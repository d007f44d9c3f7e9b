"""HTTPS inspection's generated CA and the objects a spec refers to, with the operator as a process
against a real API server.

The CA is created once: another reconcile or a restarted operator keeps it (the certificate and
the Secret's uid are compared), its certificate is published for the tenant's admins, who can
read it but not the key. A CA Secret or a custom signatures ConfigMap the spec names and the
customer has not created shows as `Stalled` with a reason naming the field, until it exists.
Pods are simulated by kwok: a missing volume does not keep them from running here, so the
conditions are what tells.
"""

from __future__ import annotations

import base64
import datetime
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from e2e.cluster import Cluster, wait_until
from e2e.operator_process import (
    OperatorProcess,
    condition,
    get_tenant,
    tenant_manifest,
    wait_event,
    wait_phase,
)
from swg_operator.reconcile.secrets import generate_inspection_ca

pytestmark = pytest.mark.cluster

SECRET = "https-inspection-ca"
CERT_CM = "https-inspection-ca-cert"
ADMIN = "inspection-admin@example.com"
# Drift events do not cover objects the operator does not own (the customer's Secret and
# ConfigMap): the resync notices them. A short one keeps the tests short.
RESYNC = "--resync-seconds=3"
# Secrets are not watched: a CA Secret deleted by hand is seen once this has passed.
RECHECK = "--secret-recheck-seconds=3"


def secret(cluster: Cluster, namespace: str) -> dict[str, Any] | None:
    found = cluster.kubectl("get", "secret", SECRET, "-n", namespace, "-o", "json", check=False)
    return json.loads(found.stdout) if found.returncode == 0 else None


def published(cluster: Cluster, namespace: str) -> str | None:
    found = cluster.kubectl("get", "configmap", CERT_CM, "-n", namespace, "-o", "json", check=False)
    return json.loads(found.stdout)["data"]["ca.crt"] if found.returncode == 0 else None


def certificate_of(obj: dict[str, Any]) -> str:
    return base64.b64decode(obj["data"]["tls.crt"]).decode()


def proxy_digest(cluster: Cluster, namespace: str) -> str:
    proxy = cluster.kubectl_json("get", "deployment", "proxy", "-n", namespace)
    return str(proxy["spec"]["template"]["metadata"]["annotations"]["swg.dev/config-digest"])


def ok_reconciles(operator: OperatorProcess) -> float:
    return operator.metrics().get('swg_operator_reconciles_total{result="ok"}', 0.0)


def stalled_reason(cluster: Cluster, name: str) -> str | None:
    found = condition(get_tenant(cluster, name), "Stalled")
    return found.get("reason") if found.get("status") == "True" else None


def can_i(cluster: Cluster, *args: str) -> bool:
    result = cluster.kubectl("auth", "can-i", *args, check=False)
    return result.stdout.strip() == "yes"


def test_generated_ca_is_created_once_and_kept_across_reconciles_and_restarts(
    prepared: Cluster, new_operator: Callable[..., OperatorProcess], tenant_name: str
) -> None:
    cluster, name, ns = prepared, tenant_name, f"swg-{tenant_name}"
    operator = new_operator()
    cluster.apply(
        tenant_manifest(
            name,
            options={"httpsInspection": {"enabled": True}},
            admins=[{"kind": "User", "name": ADMIN}],
        )
    )
    wait_phase(cluster, name, "Ready", generation=1)
    first = secret(cluster, ns)
    assert first is not None
    assert first["type"] == "kubernetes.io/tls"
    assert first["immutable"] is True
    assert set(first["data"]) == {"tls.crt", "tls.key"}
    certificate = certificate_of(first)
    assert published(cluster, ns) == certificate

    cert = x509.load_pem_x509_certificate(certificate.encode())
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert constraints.ca
    assert constraints.path_length == 0
    assert "SWG-E2E-0001 HTTPS inspection CA" in cert.subject.rfc4514_string()
    key = serialization.load_pem_private_key(base64.b64decode(first["data"]["tls.key"]), None)
    assert key.public_key().public_numbers() == cert.public_key().public_numbers()  # type: ignore[union-attr]
    wait_event(cluster, name, "Created", "HTTPS-inspection CA")

    # The tenant's admins may read the certificate, never the key.
    as_admin = ("--as", ADMIN, "-n", ns)
    assert can_i(cluster, "get", f"configmaps/{CERT_CM}", *as_admin)
    assert not can_i(cluster, "get", f"secrets/{SECRET}", *as_admin)
    assert not can_i(cluster, "get", "configmaps/proxy-config", *as_admin)

    # A spec change reconciles everything again: the same CA.
    cluster.kubectl(
        "patch",
        "swg",
        name,
        "--type=merge",
        "-p",
        json.dumps({"spec": {"urlFiltering": {"deny": {"domains": [".blocked.example"]}}}}),
    )
    wait_phase(cluster, name, "Ready", generation=2, timeout=120)
    again = secret(cluster, ns)
    assert again is not None
    assert again["metadata"]["uid"] == first["metadata"]["uid"]
    assert certificate_of(again) == certificate == published(cluster, ns)

    # A restarted operator (nothing in memory) resumes the tenant: still the same CA.
    operator = new_operator()
    wait_until(lambda: ok_reconciles(operator) >= 1, timeout=60, what="the resumed reconcile")
    body = wait_phase(cluster, name, "Ready", generation=2)
    assert condition(body, "Stalled")["status"] == "False"
    after = secret(cluster, ns)
    assert after is not None
    assert after["metadata"]["uid"] == first["metadata"]["uid"]
    assert after["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    assert certificate_of(after) == certificate == published(cluster, ns)
    assert "Forbidden" not in operator.log_text()


def test_a_lost_certificate_is_reported_and_a_deleted_ca_is_made_anew(
    prepared: Cluster, new_operator: Callable[..., OperatorProcess], tenant_name: str
) -> None:
    cluster, name, ns = prepared, tenant_name, f"swg-{tenant_name}"
    new_operator(RESYNC, RECHECK)
    cluster.apply(tenant_manifest(name, options={"httpsInspection": {"enabled": True}}))
    wait_phase(cluster, name, "Ready", generation=1)
    first = secret(cluster, ns)
    assert first is not None
    digest = proxy_digest(cluster, ns)

    # The published certificate deleted by hand: the operator cannot read the Secret to
    # publish it again, keeps the CA and says what to do.
    cluster.kubectl("delete", "configmap", CERT_CM, "-n", ns)
    wait_until(
        lambda: stalled_reason(cluster, name) == "InspectionCAUnpublished",
        timeout=60,
        what=f"{name} Stalled InspectionCAUnpublished",
    )
    kept = secret(cluster, ns)
    assert kept is not None
    assert kept["metadata"]["uid"] == first["metadata"]["uid"]
    assert published(cluster, ns) is None

    # The remedy the message names: delete the Secret; a new CA is made and published, and the
    # proxy pods roll onto it.
    cluster.kubectl("delete", "secret", SECRET, "-n", ns)
    wait_phase(cluster, name, "Ready", timeout=90)
    renewed = secret(cluster, ns)
    assert renewed is not None
    assert renewed["metadata"]["uid"] != first["metadata"]["uid"]
    assert certificate_of(renewed) != certificate_of(first)
    assert published(cluster, ns) == certificate_of(renewed)
    assert proxy_digest(cluster, ns) != digest


def test_referenced_objects_missing_stall_the_tenant_until_they_exist(
    prepared: Cluster,
    new_operator: Callable[..., OperatorProcess],
    tenant_name: str,
    tmp_path: Path,
) -> None:
    cluster, name, ns = prepared, tenant_name, f"swg-{tenant_name}"
    new_operator(RESYNC)
    cluster.apply(
        tenant_manifest(
            name,
            antivirus={"customSignatures": {"name": "customer-signatures"}},
            options={"httpsInspection": {"enabled": True, "caSecret": {"name": "customer-ca"}}},
        )
    )
    stalled = wait_until(
        lambda: (
            (body := get_tenant(cluster, name))
            and condition(body, "Stalled").get("status") == "True"
            and body
        ),
        timeout=90,
        what=f"{name} Stalled",
    )
    reason = condition(stalled, "Stalled")
    assert reason["reason"] == "CASecretNotFound"
    assert "spec.options.httpsInspection.caSecret.name" in reason["message"]
    assert "spec.antivirus.customSignatures.name" in reason["message"]
    assert stalled["status"]["phase"] == "Degraded"
    assert condition(stalled, "SpecValid")["status"] == "True"
    # Everything else is in place; no CA is generated for a tenant that names its own, and the
    # probe for the customer's Secret stored nothing.
    assert cluster.kubectl_json("get", "deployment", "proxy", "-n", ns)
    assert secret(cluster, ns) is None
    absent = cluster.kubectl("get", "secret", "customer-ca", "-n", ns, check=False)
    assert absent.returncode != 0

    # The CA Secret arrives; the signatures are still missing.
    ca = generate_inspection_ca(
        tenant=name, service_code="SWG-E2E-0001", now=datetime.datetime.now(datetime.UTC)
    )
    (tmp_path / "tls.crt").write_text(ca.certificate)
    (tmp_path / "tls.key").write_text(ca.key)
    cluster.kubectl(
        "create",
        "secret",
        "tls",
        "customer-ca",
        "-n",
        ns,
        f"--cert={tmp_path / 'tls.crt'}",
        f"--key={tmp_path / 'tls.key'}",
    )
    wait_until(
        lambda: stalled_reason(cluster, name) == "CustomSignaturesNotFound",
        timeout=60,
        what=f"{name} Stalled CustomSignaturesNotFound",
    )
    # A ConfigMap with something that is not a signature file.
    cluster.kubectl(
        "create", "configmap", "customer-signatures", "-n", ns, "--from-literal=clamd.conf=x"
    )
    wait_until(
        lambda: stalled_reason(cluster, name) == "CustomSignaturesInvalid",
        timeout=60,
        what=f"{name} Stalled CustomSignaturesInvalid",
    )
    cluster.kubectl("delete", "configmap", "customer-signatures", "-n", ns)
    cluster.kubectl(
        "create",
        "configmap",
        "customer-signatures",
        "-n",
        ns,
        "--from-literal=swg-test.ndb=SWG.Test.Sample:0:*:5357472d544553542d53414d504c45",
    )
    body = wait_phase(cluster, name, "Ready", timeout=90)
    assert condition(body, "Stalled")["status"] == "False"
    # The customer's objects are theirs: never pruned, the Secret never replaced.
    assert cluster.kubectl_json("get", "configmap", "customer-signatures", "-n", ns)
    assert secret(cluster, ns) is None
