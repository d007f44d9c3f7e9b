"""Test certificates made with the openssl command line: an origin CA with one server
certificate for every test name, and a tenant inspection CA (what the operator's Secret holds)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

# spec.access.hostname of the data-plane access tenants: the TLS listener's certificate names it.
ACCESS_HOSTNAME = "proxy.access.test"


@dataclass(frozen=True)
class TestPki:
    origin_ca_cert: Path
    origin_cert: Path
    origin_key: Path
    # The tenant's inspection CA, laid out as the Secret is mounted (tls.crt / tls.key).
    inspection_dir: Path
    # The TLS listener's server certificate for ACCESS_HOSTNAME (spec.access.tls), laid out as
    # its Secret is mounted, and the CA that issued it (what the clients are given to trust).
    access_dir: Path
    access_ca_cert: Path

    @property
    def inspection_ca_cert(self) -> Path:
        return self.inspection_dir / "tls.crt"


def _openssl(*args: str) -> None:
    proc = subprocess.run(["openssl", *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {proc.stderr.strip()}")


def _ca(cert: Path, key: Path, subject: str) -> None:
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "30",
        "-subj", subject, "-keyout", str(key), "-out", str(cert),
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip


def make_pki(directory: Path, names: Iterable[str]) -> TestPki:
    directory.mkdir(parents=True, exist_ok=True)
    origin_ca_cert, origin_ca_key = directory / "origin-ca.crt", directory / "origin-ca.key"
    _ca(origin_ca_cert, origin_ca_key, "/O=swg-operator tests/CN=Test Origin CA")

    sans = sorted({f"DNS:{n}" for name in names for n in (name, f"*.{name}")})
    ext = directory / "origin.ext"
    ext.write_text(
        "basicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
        f"subjectAltName={','.join([*sans, 'IP:127.0.0.2'])}\n"
    )
    origin_key, origin_csr = directory / "origin.key", directory / "origin.csr"
    origin_cert = directory / "origin.crt"
    _openssl(
        "req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=origin.test",
        "-keyout", str(origin_key), "-out", str(origin_csr),
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", str(origin_csr), "-CA", str(origin_ca_cert),
        "-CAkey", str(origin_ca_key), "-CAcreateserial", "-days", "30", "-sha256",
        "-extfile", str(ext), "-out", str(origin_cert),
    )  # fmt: skip

    inspection = directory / "inspection"
    inspection.mkdir(exist_ok=True)
    _ca(
        inspection / "tls.crt",
        inspection / "tls.key",
        "/O=Test Tenant/CN=Test Tenant Inspection CA",
    )
    access = directory / "access"
    access.mkdir(exist_ok=True)
    access_ca_cert, access_ca_key = directory / "access-ca.crt", directory / "access-ca.key"
    _ca(access_ca_cert, access_ca_key, "/O=Test Tenant/CN=Test Tenant Listener CA")
    _server(
        access / "tls.crt",
        access / "tls.key",
        ca=(access_ca_cert, access_ca_key),
        sans=[f"DNS:{ACCESS_HOSTNAME}"],
        workdir=directory,
    )
    for path in (origin_key, inspection / "tls.key", access / "tls.key"):
        path.chmod(0o644)  # read by the non-root daemons through a read-only bind mount
    return TestPki(origin_ca_cert, origin_cert, origin_key, inspection, access, access_ca_cert)


def private_ca_server(directory: Path, *, sans: list[str]) -> tuple[Path, Path, Path]:
    """A CA of its own (a customer's private CA, in no bundle) and a server certificate for
    ``sans`` it issued: (CA certificate, server certificate, server key)."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_cert, ca_key = directory / "ca.crt", directory / "ca.key"
    _ca(ca_cert, ca_key, "/O=Customer/CN=Customer Private Root CA")
    server = directory / "server"
    server.mkdir(exist_ok=True)
    cert, key = server / "tls.crt", server / "tls.key"
    _server(cert, key, ca=(ca_cert, ca_key), sans=sans, workdir=directory)
    return ca_cert, cert, key


def _server(
    cert: Path, key: Path, *, ca: tuple[Path, Path], sans: list[str], workdir: Path
) -> None:
    """A server certificate for ``sans`` issued by ``ca`` (certificate, key)."""
    ext = workdir / f"{cert.parent.name}.ext"
    ext.write_text(
        "basicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
        f"subjectAltName={','.join(sans)}\n"
    )
    csr = workdir / f"{cert.parent.name}.csr"
    _openssl(
        "req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=server.test",
        "-keyout", str(key), "-out", str(csr),
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey", str(ca[1]),
        "-CAcreateserial", "-days", "30", "-sha256", "-extfile", str(ext), "-out", str(cert),
    )  # fmt: skip


def subject_of(pem: str, *, field: str = "issuer") -> str:
    """``issuer`` or ``subject`` of the first PEM certificate in ``pem``, one line."""
    proc = subprocess.run(
        ["openssl", "x509", "-noout", f"-{field}", "-nameopt", "oneline"],
        input=pem,
        capture_output=True,
        text=True,
        check=True,
    )
    return proc.stdout.strip()
