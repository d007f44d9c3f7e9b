"""Certificates and keys for one local control plane, made with the openssl command line.

A throw-away CA signs: the API server's serving certificate, one client certificate per identity
(admin in system:masters, the controller manager and the scheduler under their bootstrap-RBAC
user names, kwok) and serving certificates for the controller manager and scheduler, so their
health endpoints verify against the same CA. An RSA key pair signs ServiceAccount tokens.
"""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

_DAYS = "365"

API_SERVER_SANS = (
    "DNS:localhost",
    "DNS:kubernetes",
    "DNS:kubernetes.default",
    "DNS:kubernetes.default.svc",
    "DNS:kubernetes.default.svc.cluster.local",
    "IP:127.0.0.1",
)
LOOPBACK_SANS = ("DNS:localhost", "IP:127.0.0.1")


@dataclass(frozen=True)
class KeyPair:
    cert: Path
    key: Path


@dataclass(frozen=True)
class Pki:
    """Paths of everything `make_pki` writes."""

    ca: KeyPair
    apiserver: KeyPair
    admin: KeyPair
    controller_manager: KeyPair
    controller_manager_serving: KeyPair
    scheduler: KeyPair
    scheduler_serving: KeyPair
    kwok: KeyPair
    service_account_key: Path
    service_account_pub: Path


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, text=True)


def _make_ca(directory: Path) -> KeyPair:
    pair = KeyPair(directory / "ca.crt", directory / "ca.key")
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "3650",
        "-keyout", str(pair.key), "-out", str(pair.cert),
        "-subj", "/CN=swg-operator-local-ca",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
    )  # fmt: skip
    return pair


def _make_leaf(
    ca: KeyPair,
    directory: Path,
    name: str,
    *,
    subject: str,
    usage: str,
    sans: Sequence[str] = (),
) -> KeyPair:
    pair = KeyPair(directory / f"{name}.crt", directory / f"{name}.key")
    csr = directory / f"{name}.csr"
    ext = directory / f"{name}.ext"
    lines = [
        "basicConstraints=critical,CA:FALSE",
        "keyUsage=critical,digitalSignature,keyEncipherment",
        f"extendedKeyUsage={usage}",
    ]
    if sans:
        lines.append("subjectAltName=" + ",".join(sans))
    ext.write_text("\n".join(lines) + "\n")
    _openssl(
        "req", "-new", "-newkey", "rsa:2048", "-nodes", "-sha256",
        "-keyout", str(pair.key), "-out", str(csr), "-subj", subject,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-sha256", "-days", _DAYS, "-in", str(csr),
        "-CA", str(ca.cert), "-CAkey", str(ca.key),
        "-set_serial", str(secrets.randbits(63)), "-extfile", str(ext), "-out", str(pair.cert),
    )  # fmt: skip
    csr.unlink()
    ext.unlink()
    return pair


def issue(
    ca: KeyPair,
    directory: Path,
    name: str,
    *,
    subject: str,
    server: bool = False,
    sans: Sequence[str] = (),
) -> KeyPair:
    """A client (or, with `server`, serving) certificate `<name>.crt` signed by `ca`.

    `subject` is in openssl's form, e.g. `/O=system:nodes/CN=system:node:swg-node`.
    """
    usage = "serverAuth" if server else "clientAuth"
    return _make_leaf(ca, directory, name, subject=subject, usage=usage, sans=sans)


def make_pki(directory: Path, *, service_ip: str, apiserver_ips: Sequence[str] = ()) -> Pki:
    """Write a fresh CA, certificates and the ServiceAccount key pair into `directory`.

    `apiserver_ips` are addresses the API server also serves on (besides 127.0.0.1).
    """
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    ca = _make_ca(directory)
    sa_key, sa_pub = directory / "sa.key", directory / "sa.pub"
    _openssl(
        "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", str(sa_key)
    )
    _openssl("pkey", "-in", str(sa_key), "-pubout", "-out", str(sa_pub))
    client = "clientAuth"
    return Pki(
        ca=ca,
        apiserver=_make_leaf(
            ca,
            directory,
            "apiserver",
            subject="/CN=kube-apiserver",
            usage="serverAuth",
            sans=(*API_SERVER_SANS, f"IP:{service_ip}", *(f"IP:{ip}" for ip in apiserver_ips)),
        ),
        admin=_make_leaf(
            ca, directory, "admin", subject="/O=system:masters/CN=swg-local-admin", usage=client
        ),
        controller_manager=_make_leaf(
            ca,
            directory,
            "controller-manager",
            subject="/CN=system:kube-controller-manager",
            usage=client,
        ),
        controller_manager_serving=_make_leaf(
            ca,
            directory,
            "controller-manager-serving",
            subject="/CN=kube-controller-manager",
            usage="serverAuth",
            sans=LOOPBACK_SANS,
        ),
        scheduler=_make_leaf(
            ca, directory, "scheduler", subject="/CN=system:kube-scheduler", usage=client
        ),
        scheduler_serving=_make_leaf(
            ca,
            directory,
            "scheduler-serving",
            subject="/CN=kube-scheduler",
            usage="serverAuth",
            sans=LOOPBACK_SANS,
        ),
        # kwok writes node and pod status, leases and deletes pods across all namespaces; it
        # stands in for every kubelet, so it gets the admin group rather than a node identity.
        kwok=_make_leaf(ca, directory, "kwok", subject="/O=system:masters/CN=kwok", usage=client),
        service_account_key=sa_key,
        service_account_pub=sa_pub,
    )
