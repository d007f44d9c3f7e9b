"""The TLS listener's certificate (spec.access.tls) with the operator as a process against a
real API server: the generated certificate is created once for access.hostname and published
for the tenant's admins (who cannot read the key), the proxy mounts it and the Service and
NetworkPolicy open the TLS port; a new hostname stalls the tenant until the Secret is deleted,
then a certificate for the new name is made; a certificate Secret the spec names is waited for.
Pods are simulated by kwok: the conditions and objects are what tells.
"""

from __future__ import annotations

import base64
import datetime
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from e2e.cluster import Cluster, unique_name, wait_until
from e2e.operator_process import (
    OperatorProcess,
    condition,
    forget_tenant,
    get_tenant,
    install_prerequisites,
    tenant_manifest,
    wait_phase,
)
from swg_operator.reconcile.access_cert import generate_access_certificate

pytestmark = pytest.mark.cluster

LOGS = Path(__file__).resolve().parents[1] / ".local" / "logs" / "e2e"
SECRET = "proxy-access-tls"
CERT_CM = "proxy-access-tls-cert"
ADMIN = "listener-admin@example.com"
RESYNC = "--resync-seconds=3"


@pytest.fixture(scope="module")
def prepared(cluster: Cluster) -> Cluster:
    install_prerequisites(cluster)
    return cluster


@pytest.fixture
def operator(prepared: Cluster, request: pytest.FixtureRequest) -> Iterator[OperatorProcess]:
    process = OperatorProcess(prepared, log_path=LOGS / f"{request.node.name}.log", args=(RESYNC,))
    yield process.start()
    process.stop()


@pytest.fixture
def tenant_name(prepared: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    name = unique_name(request.node.name.removeprefix("test_")[:20])
    yield name
    forget_tenant(prepared, name)


def _secret(cluster: Cluster, namespace: str) -> dict[str, Any] | None:
    found = cluster.kubectl("get", "secret", SECRET, "-n", namespace, "-o", "json", check=False)
    return json.loads(found.stdout) if found.returncode == 0 else None


def _certificate(secret: dict[str, Any]) -> x509.Certificate:
    return x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["tls.crt"]))


def _names(certificate: x509.Certificate) -> list[str]:
    sans = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return list(sans.get_values_for_type(x509.DNSName))


def _stalled(cluster: Cluster, name: str) -> str | None:
    found = condition(get_tenant(cluster, name), "Stalled")
    return found.get("reason") if found.get("status") == "True" else None


def _stalled_message(cluster: Cluster, name: str, reason: str) -> str:
    """Wait until the tenant is Stalled for `reason`; the condition's message."""
    wait_until(
        lambda: _stalled(cluster, name) == reason,
        timeout=60,
        what=f"{name} Stalled {reason}",
    )
    message: str = condition(get_tenant(cluster, name), "Stalled")["message"]
    return message


def _can_i(cluster: Cluster, *args: str) -> bool:
    return cluster.kubectl("auth", "can-i", *args, check=False).stdout.strip() == "yes"


def test_generated_certificate_published_mounted_and_exposed(
    prepared: Cluster, operator: OperatorProcess, tenant_name: str
) -> None:
    cluster, name, ns = prepared, tenant_name, f"swg-{tenant_name}"
    access = {"hostname": "proxy.listener.example", "tls": {"enabled": True, "port": 8443}}
    cluster.apply(tenant_manifest(name, access=access, admins=[{"kind": "User", "name": ADMIN}]))
    wait_phase(cluster, name, "Ready", generation=1)
    secret = _secret(cluster, ns)
    assert secret is not None
    assert secret["type"] == "kubernetes.io/tls"
    assert secret["immutable"] is True
    certificate = _certificate(secret)
    assert _names(certificate) == ["proxy.listener.example"]
    assert certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    published = cluster.kubectl_json("get", "configmap", CERT_CM, "-n", ns)["data"]["tls.crt"]
    assert published == base64.b64decode(secret["data"]["tls.crt"]).decode()
    as_admin = ("--as", ADMIN, "-n", ns)
    assert _can_i(cluster, "get", f"configmaps/{CERT_CM}", *as_admin)
    assert not _can_i(cluster, "get", f"secrets/{SECRET}", *as_admin)

    pod = cluster.kubectl_json("get", "deployment", "proxy", "-n", ns)["spec"]["template"]["spec"]
    assert {"name": "access-tls", "secret": {"secretName": SECRET, "defaultMode": 0o440}} in pod[
        "volumes"
    ]
    service = cluster.kubectl_json("get", "service", "proxy", "-n", ns)
    assert {(p["name"], p["port"]) for p in service["spec"]["ports"]} == {
        ("proxy", 3128),
        ("proxy-tls", 8443),
    }
    policy = cluster.kubectl_json("get", "networkpolicy", "proxy-ingress-clients", "-n", ns)
    assert {"protocol": "TCP", "port": 8443} in policy["spec"]["ingress"][0]["ports"]

    # Another reconcile (a spec change) keeps the certificate.
    cluster.kubectl(
        "patch", "swg", name, "--type=merge", "-p", json.dumps({"spec": {"displayName": "x"}})
    )
    wait_phase(cluster, name, "Ready", generation=2)
    again = _secret(cluster, ns)
    assert again is not None
    assert again["metadata"]["uid"] == secret["metadata"]["uid"]
    assert "Forbidden" not in operator.log_text()


def test_a_new_hostname_stalls_until_the_secret_is_deleted(
    prepared: Cluster, operator: OperatorProcess, tenant_name: str
) -> None:
    cluster, name, ns = prepared, tenant_name, f"swg-{tenant_name}"
    access = {"hostname": "old.listener.example", "tls": {"enabled": True}}
    cluster.apply(tenant_manifest(name, access=access))
    wait_phase(cluster, name, "Ready", generation=1)
    patch = {"spec": {"access": {"hostname": "new.listener.example"}}}
    cluster.kubectl("patch", "swg", name, "--type=merge", "-p", json.dumps(patch))
    message = _stalled_message(cluster, name, "AccessCertificateInvalid")
    assert "spec.access.tls" in message
    assert "new.listener.example" in message
    cluster.kubectl("delete", "secret", SECRET, "-n", ns)
    wait_until(lambda: _stalled(cluster, name) is None, timeout=60, what=f"{name} not Stalled")
    renewed = _secret(cluster, ns)
    assert renewed is not None
    assert _names(_certificate(renewed)) == ["new.listener.example"]
    published = cluster.kubectl_json("get", "configmap", CERT_CM, "-n", ns)["data"]["tls.crt"]
    assert published == base64.b64decode(renewed["data"]["tls.crt"]).decode()


def test_a_named_certificate_secret_is_waited_for(
    prepared: Cluster, operator: OperatorProcess, tenant_name: str
) -> None:
    cluster, name, ns = prepared, tenant_name, f"swg-{tenant_name}"
    access = {
        "hostname": "own.listener.example",
        "tls": {"enabled": True, "certificateSecret": {"name": "own-listener"}},
    }
    cluster.apply(tenant_manifest(name, access=access))
    message = _stalled_message(cluster, name, "AccessCertificateNotFound")
    assert "spec.access.tls.certificateSecret.name" in message
    assert _secret(cluster, ns) is None  # nothing generated
    own = generate_access_certificate(
        hostname="own.listener.example",
        tenant=name,
        service_code="SWG-E2E-0001",
        now=datetime.datetime.now(datetime.UTC),
    )
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "own-listener", "namespace": ns},
            "type": "kubernetes.io/tls",
            "stringData": {"tls.crt": own.certificate, "tls.key": own.key},
        }
    )
    wait_until(lambda: _stalled(cluster, name) is None, timeout=60, what=f"{name} not Stalled")
