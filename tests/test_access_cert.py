"""The TLS listener's certificate (reconcile.access_cert): the generated one is a server
certificate for access.hostname that a real TLS client (Python's ssl, OpenSSL) accepts when it
trusts that certificate alone; through the reconcile with the in-memory API it is created once,
published for the admins, mounted by the proxy, and judged when it no longer fits; the
customer's Secret is waited for."""

from __future__ import annotations

import asyncio
import base64
import datetime
import socket
import ssl
import threading
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from inspection_support import (
    NOW,
    NS,
    condition,
    kube_kind,
    respec,
    run,
    setup,
    tenant,
    tls_secret,
)
from swg_operator.reconcile.access_cert import (
    ACCESS_CERTIFICATE_INVALID,
    ACCESS_CERTIFICATE_NOT_FOUND,
    generate_access_certificate,
    names_host,
)

HOST = "proxy.acme.example"
TLS = {"hostname": HOST, "tls": {"enabled": True}}
SECRET = "proxy-access-tls"
CERT_CM = "proxy-access-tls-cert"


def _handshake(certificate: str, key: str, *, trusted: str, server_name: str, tmp: Path) -> str:
    """A TLS server on loopback with `certificate`; a client trusting `trusted` only connects
    with `server_name`. '' when the handshake verified, else the client's error."""
    (tmp / "c.pem").write_text(certificate)
    (tmp / "k.pem").write_text(key)
    (tmp / "t.pem").write_text(trusted)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(tmp / "c.pem", tmp / "k.pem")
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        connection, _ = listener.accept()
        try:
            with server.wrap_socket(connection, server_side=True) as tls:
                tls.recv(1)
        except (OSError, ssl.SSLError):
            pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    client = ssl.create_default_context(cafile=str(tmp / "t.pem"))
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
            client.wrap_socket(raw, server_hostname=server_name) as tls,
        ):
            tls.sendall(b"x")
        return ""
    except ssl.SSLError as exc:
        return str(exc)
    finally:
        thread.join(5)
        listener.close()


@pytest.fixture(scope="module")
def generated() -> Any:
    return generate_access_certificate(hostname=HOST, tenant="acme", service_code="SWG-1", now=NOW)


def test_the_generated_certificate_serves_its_hostname_only(generated: Any, tmp_path: Path) -> None:
    certificate = x509.load_pem_x509_certificate(generated.certificate.encode())
    assert names_host(certificate, HOST)
    assert not names_host(certificate, "other.acme.example")
    constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.value.ca is False
    ok = _handshake(
        generated.certificate, generated.key, trusted=generated.certificate, server_name=HOST,
        tmp=tmp_path,
    )  # fmt: skip
    assert ok == ""
    wrong_name = _handshake(
        generated.certificate, generated.key, trusted=generated.certificate,
        server_name="other.acme.example", tmp=tmp_path,
    )  # fmt: skip
    assert "hostname" in wrong_name.lower() or "mismatch" in wrong_name.lower(), wrong_name
    other = generate_access_certificate(hostname=HOST, tenant="x", service_code="SWG-2", now=NOW)
    untrusted = _handshake(
        generated.certificate, generated.key, trusted=other.certificate, server_name=HOST,
        tmp=tmp_path,
    )  # fmt: skip
    assert "certificate verify failed" in untrusted, untrusted


def _secret_certificate(kube: Any) -> str:
    secret = kube.find("Secret", SECRET, NS)
    assert secret is not None
    return base64.b64decode(secret["data"]["tls.crt"]).decode()


def test_generated_once_published_and_mounted() -> None:
    kube, ctx = setup(tenant(access=TLS))
    run(kube, ctx)
    first = _secret_certificate(kube)
    published = kube.find("ConfigMap", CERT_CM, NS)
    assert published is not None
    assert published["data"]["tls.crt"] == first
    deployment = kube.find("Deployment", "proxy", NS)
    assert deployment is not None
    volumes = deployment["spec"]["template"]["spec"]["volumes"]
    assert {"name": "access-tls", "secret": {"secretName": SECRET, "defaultMode": 0o440}} in volumes
    run(kube, ctx)
    assert _secret_certificate(kube) == first  # never replaced
    published = kube.find("ConfigMap", CERT_CM, NS)
    assert published is not None
    assert published["data"]["tls.crt"] == first


def test_a_new_hostname_stalls_until_the_secret_is_deleted() -> None:
    kube, ctx = setup(tenant(access=TLS))
    run(kube, ctx)
    respec(kube, access={"hostname": "gw.acme.example", "tls": {"enabled": True}})
    status = run(kube, ctx)
    stalled = condition(status, "Stalled")
    assert stalled["status"] == "True"
    assert stalled["reason"] == ACCESS_CERTIFICATE_INVALID
    assert "spec.access.tls" in stalled["message"]
    assert "gw.acme.example" in stalled["message"]
    asyncio.run(kube.delete(kube_kind("Secret"), SECRET, namespace=NS))
    status = run(kube, ctx)
    assert condition(status, "Stalled")["status"] == "False"
    renewed = x509.load_pem_x509_certificate(_secret_certificate(kube).encode())
    assert names_host(renewed, "gw.acme.example")


def test_the_customer_secret_is_waited_for_naming_the_field(generated: Any) -> None:
    access = {"hostname": HOST, "tls": {"enabled": True, "certificateSecret": {"name": "mine"}}}
    kube, ctx = setup(tenant(access=access))
    status = run(kube, ctx)
    stalled = condition(status, "Stalled")
    assert stalled["reason"] == ACCESS_CERTIFICATE_NOT_FOUND
    assert "spec.access.tls.certificateSecret.name" in stalled["message"]
    assert kube.find("Secret", SECRET, NS) is None  # nothing generated
    kube.put(tls_secret("mine", generated.certificate, generated.key))
    status = run(kube, ctx)
    assert condition(status, "Stalled")["status"] == "False"
    other = generate_access_certificate(
        hostname="elsewhere.example", tenant="acme", service_code="SWG-1", now=NOW
    )
    kube.put(tls_secret("mine", other.certificate, other.key))
    stalled = condition(run(kube, ctx), "Stalled")
    assert stalled["reason"] == ACCESS_CERTIFICATE_INVALID
    assert "does not name proxy.acme.example" in stalled["message"]


def test_an_expired_certificate_is_reported() -> None:
    old = NOW - datetime.timedelta(days=900)
    expired = generate_access_certificate(hostname=HOST, tenant="acme", service_code="S", now=old)
    access = {"hostname": HOST, "tls": {"enabled": True, "certificateSecret": {"name": "mine"}}}
    kube, ctx = setup(tenant(access=access))
    kube.put(tls_secret("mine", expired.certificate, expired.key))
    stalled = condition(run(kube, ctx), "Stalled")
    assert stalled["reason"] == ACCESS_CERTIFICATE_INVALID
    assert "expired" in stalled["message"]
