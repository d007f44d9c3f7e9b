"""Judgements on an HTTPS-inspection CA as the proxy will use it: does the Secret's key belong to
its certificate, is that certificate the one published to the admins, and when does it expire.

Pure: the shell (`reconcile.secrets`) reads the Secret and passes it in, with `now`. Kept apart
from `reconcile.references` because parsing certificates needs `cryptography`, which the pure
core's import contract keeps out; an import contract keeps this module off the cluster too.
"""

from __future__ import annotations

import base64
import binascii
import datetime
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import NameOID

from swg_operator.reconcile.lifecycle import format_time
from swg_operator.reconcile.status import CaExpiry, Unresolved

# A generated CA is valid two years; admins hear of its end this long before.
EXPIRY_WARNING: Final = datetime.timedelta(days=30)

INSPECTION_CA_MISMATCH: Final = "InspectionCAMismatch"
INSPECTION_CA_EXPIRED: Final = "InspectionCAExpired"
CA_SECRET_MISMATCH: Final = "CASecretMismatch"  # noqa: S105 - a condition reason
CA_SECRET_EXPIRED: Final = "CASecretExpired"  # noqa: S105 - a condition reason


@dataclass(frozen=True)
class TlsPair:
    """What a `kubernetes.io/tls` Secret holds, as far as the proxy is concerned."""

    certificate: x509.Certificate | None
    problem: str | None  # why the pair is unusable (None: the key is the certificate's)


@dataclass(frozen=True)
class GeneratedPair:
    """A certificate the operator generated and its key, both PEM."""

    certificate: str
    key: str = field(repr=False)  # PKCS#8: goes into the Secret and nowhere else


def pem_pair(certificate: x509.Certificate, key: CertificateIssuerPrivateKeyTypes) -> GeneratedPair:
    return GeneratedPair(
        certificate=certificate.public_bytes(serialization.Encoding.PEM).decode("ascii"),
        key=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode("ascii"),
    )


def self_signed(
    key: CertificateIssuerPrivateKeyTypes,
    *,
    names: tuple[str, str, str],
    now: datetime.datetime,
    backdate: datetime.timedelta,
    validity: datetime.timedelta,
    ca: bool,
    extensions: tuple[x509.ExtensionType, ...] = (),
) -> x509.Certificate:
    """A self-signed certificate named O, OU, CN = `names`, valid from `now - backdate` for
    `validity`: a CA (CA:TRUE, path length 0, key usage keyCertSign and cRLSign) or not
    (CA:FALSE, digitalSignature), with a subject key identifier and `extensions` (not
    critical)."""
    organization, unit, common_name = names
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization[:64]),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64]),
        ]
    )
    public = key.public_key()
    usage = x509.KeyUsage(
        digital_signature=not ca,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - backdate)
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
    )
    for extension in extensions:
        builder = builder.add_extension(extension, critical=False)
    return builder.sign(key, hashes.SHA256())


def generated_tls_secret(
    pair: GeneratedPair, *, name: str, namespace: str, labels: Mapping[str, str]
) -> dict[str, Any]:
    """The `kubernetes.io/tls` Secret the proxy mounts (tls.crt, tls.key). Immutable: a
    generated certificate is replaced by deleting its Secret (a new one is generated), never
    edited in place."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "type": "kubernetes.io/tls",
        "immutable": True,
        "stringData": {"tls.crt": pair.certificate, "tls.key": pair.key},
    }


def pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")


def load_certificate(pem: str | bytes) -> x509.Certificate | None:
    try:
        return x509.load_pem_x509_certificate(pem.encode() if isinstance(pem, str) else pem)
    except ValueError:
        return None


def _field(secret: Mapping[str, Any], key: str) -> bytes | None:
    raw = (secret.get("data") or {}).get(key)
    if not isinstance(raw, str):
        return None
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        return None


def tls_pair(secret: Mapping[str, Any]) -> TlsPair:
    """The Secret's `tls.crt` and whether `tls.key` is its private key (the API server returns
    `data` base64-encoded). The key is parsed to compare public keys and dropped."""
    certificate_pem, key_pem = _field(secret, "tls.crt"), _field(secret, "tls.key")
    certificate = load_certificate(certificate_pem) if certificate_pem else None
    if certificate is None:
        return TlsPair(None, "tls.crt holds no PEM certificate")
    if not key_pem:
        return TlsPair(certificate, "tls.key is missing")
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError):
        return TlsPair(certificate, "tls.key holds no unencrypted PEM private key")
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    if key.public_key().public_bytes(der, spki) != certificate.public_key().public_bytes(der, spki):
        return TlsPair(certificate, "tls.key is not the private key of tls.crt")
    return TlsPair(certificate, None)


def fingerprint(certificate: x509.Certificate) -> str:
    """SHA-256 of the DER certificate, as `openssl x509 -fingerprint -sha256` prints it."""
    return certificate.fingerprint(hashes.SHA256()).hex(":").upper()


def generated_ca_problems(
    secret: Mapping[str, Any], published: str, *, namespace: str, secret_name: str, config_map: str
) -> tuple[Unresolved, ...]:
    """The generated CA's Secret against the certificate published for the admins: the proxy
    presents the Secret's CA, so any difference means clients that trust the published one
    reject every inspected site."""
    pair = tls_pair(secret)
    wanted = load_certificate(published)
    where = f"Secret {namespace}/{secret_name}"
    cm = f"ConfigMap {namespace}/{config_map}"
    if pair.problem is not None:
        why = f"{where} is unusable ({pair.problem})"
    elif wanted is None or pair.certificate is None or pair.certificate != wanted:
        theirs = fingerprint(pair.certificate) if pair.certificate is not None else "none"
        ours = fingerprint(wanted) if wanted is not None else "none"
        why = (
            f"{where} holds a CA (SHA-256 {theirs}) other than the certificate published in "
            f"{cm} (SHA-256 {ours})"
        )
    else:
        return ()
    return (
        Unresolved(
            INSPECTION_CA_MISMATCH,
            f"spec.options.httpsInspection: {why}; the proxy would present a CA the admins "
            f"were not given. Delete the Secret to have a new CA generated and published in "
            f"{cm} (clients must then trust the new one), or name a CA of your own in "
            f"spec.options.httpsInspection.caSecret",
        ),
    )


def customer_ca_problems(
    secret: Mapping[str, Any], *, namespace: str, name: str
) -> tuple[Unresolved, ...]:
    """The customer's CA Secret: its key must be its certificate's."""
    pair = tls_pair(secret)
    if pair.problem is None:
        return ()
    return (
        Unresolved(
            CA_SECRET_MISMATCH,
            f"spec.options.httpsInspection.caSecret.name: Secret {namespace}/{name}: "
            f"{pair.problem}; the proxy cannot sign with it. Put the CA's certificate in tls.crt "
            f"and its private key (unencrypted PEM) in tls.key",
        ),
    )


def certificate_expiry(
    certificate: str | x509.Certificate, *, now: datetime.datetime, where: str
) -> CaExpiry | None:
    """Whether the CA in `where` expires within `EXPIRY_WARNING` of `now` (or has); None when
    there is no certificate to judge."""
    cert = load_certificate(certificate) if isinstance(certificate, str) else certificate
    if cert is None:
        return None
    not_after = cert.not_valid_after_utc
    when = format_time(not_after)
    if now >= not_after:
        return CaExpiry(
            True,
            "Expired",
            f"The HTTPS-inspection CA in {where} expired at {when}: clients reject every "
            f"inspected site",
            not_after=when,
        )
    if now >= not_after - EXPIRY_WARNING:
        days = (not_after - now).days
        return CaExpiry(
            True,
            "Expiring",
            f"The HTTPS-inspection CA in {where} expires at {when} (in {days} days); replace it "
            f"and give the clients the new certificate before then",
            not_after=when,
        )
    return CaExpiry(
        False, "Valid", f"The HTTPS-inspection CA in {where} is valid until {when}", when
    )


def expired_ca(expiry: CaExpiry | None, *, customer: bool, field: str) -> tuple[Unresolved, ...]:
    """An expired CA cannot serve: the tenant is not Ready until it is replaced."""
    if expiry is None or expiry.reason != "Expired":
        return ()
    remedy = (
        "replace the Secret with a valid CA"
        if customer
        else "delete the Secret to have a new CA generated and published"
    )
    return (
        Unresolved(
            CA_SECRET_EXPIRED if customer else INSPECTION_CA_EXPIRED,
            f"{field}: {expiry.message}; {remedy}",
        ),
    )
