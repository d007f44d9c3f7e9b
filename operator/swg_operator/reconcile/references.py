"""Judgements on the objects a spec refers to but the operator does not own: the customer's CA
Secret, the custom signatures ConfigMap, and the generated CA's published certificate. Pure: the
shell (`reconcile.loop`, `reconcile.secrets`) fetches what it may and passes it in.

The operator reads one Secret, the CA it generates, by name; a customer's CA Secret only when
the platform lets it (`reconcile.secrets`, judged in `reconcile.ca_pair`). Otherwise whether one
exists is all it learns of it, from a dry-run create (`KubeApi.create(..., dry_run=True)`: 409
AlreadyExists, or nothing stored).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Final

from swg_operator.api import SecureWebGatewaySpec
from swg_operator.api.authentication import BIND_PASSWORD_KEY
from swg_operator.naming import inspection_ca_certificate_name, inspection_ca_secret_name
from swg_operator.reconcile.status import Unresolved
from swg_operator.render.configmaps import CA_CERTIFICATE_KEY
from swg_operator.render.signatures import SIGNATURE_EXTENSIONS

_PEM_CERTIFICATE = re.compile(
    r"\A-----BEGIN CERTIFICATE-----\r?\n"
    r"[A-Za-z0-9+/=\r\n]{64,8192}"
    r"-----END CERTIFICATE-----\r?\n?\Z"
)

CA_SECRET_NOT_FOUND: Final = "CASecretNotFound"  # noqa: S105 - a condition reason
INSPECTION_CA_UNPUBLISHED: Final = "InspectionCAUnpublished"
CUSTOM_SIGNATURES_NOT_FOUND: Final = "CustomSignaturesNotFound"
CUSTOM_SIGNATURES_INVALID: Final = "CustomSignaturesInvalid"
LDAP_BIND_SECRET_NOT_FOUND: Final = "LDAPBindSecretNotFound"  # noqa: S105 - a condition reason
LDAP_BIND_SECRET_INVALID: Final = "LDAPBindSecretInvalid"  # noqa: S105 - a condition reason


def is_certificate_pem(text: str) -> bool:
    """One PEM certificate block and nothing else (what the operator publishes)."""
    return _PEM_CERTIFICATE.match(text) is not None


def published_certificate(observed: Iterable[Mapping[str, Any]], namespace: str) -> str | None:
    """The generated CA's certificate as published in the tenant namespace, or None when the
    ConfigMap is missing, being deleted or does not hold one certificate."""
    name = inspection_ca_certificate_name()
    for obj in observed:
        meta = obj.get("metadata", {})
        if (
            obj.get("kind") != "ConfigMap"
            or meta.get("name") != name
            or meta.get("namespace") != namespace
            or meta.get("deletionTimestamp")
        ):
            continue
        text = (obj.get("data") or {}).get(CA_CERTIFICATE_KEY)
        return text if isinstance(text, str) and is_certificate_pem(text) else None
    return None


def unpublished_ca(namespace: str) -> Unresolved:
    """The generated CA's Secret exists but its certificate is not published (the ConfigMap was
    deleted by hand): the operator publishes a CA's certificate only when it creates the CA."""
    secret = inspection_ca_secret_name()
    return Unresolved(
        INSPECTION_CA_UNPUBLISHED,
        f"spec.options.httpsInspection: Secret {namespace}/{secret} holds the generated CA, but "
        f"its certificate is no longer published in ConfigMap "
        f"{inspection_ca_certificate_name()}, and the operator publishes a CA's certificate "
        f"only when it creates the CA; delete the Secret to have a new CA generated and "
        f"published (clients must then trust the new one), or name a CA of your own in "
        f"spec.options.httpsInspection.caSecret",
    )


def ca_secret_problems(
    spec: SecureWebGatewaySpec, *, exists: bool | None, namespace: str
) -> tuple[Unresolved, ...]:
    """The CA Secret the spec names: `exists` as the dry-run create found it (None: not
    checked)."""
    inspection = spec.options.https_inspection
    if not inspection.enabled or inspection.ca_secret is None or exists is None or exists:
        return ()
    name = inspection.ca_secret.name
    return (
        Unresolved(
            CA_SECRET_NOT_FOUND,
            f"spec.options.httpsInspection.caSecret.name: Secret {namespace}/{name} does not "
            f"exist; create it (type kubernetes.io/tls, keys tls.crt and tls.key) in the tenant "
            f"namespace, or remove caSecret to have the operator generate a CA",
        ),
    )


def custom_signatures_problems(
    spec: SecureWebGatewaySpec, found: Mapping[str, Any] | None, *, namespace: str
) -> tuple[Unresolved, ...]:
    """The custom signatures ConfigMap the spec names, as found in the tenant namespace (None:
    missing). Its keys land beside the anti-virus config files: each must be a ClamAV signature
    file the image installs, and there must be at least one."""
    ref = spec.antivirus.custom_signatures
    if not spec.antivirus.enabled or ref is None:
        return ()
    field = "spec.antivirus.customSignatures.name"
    if found is None or found.get("metadata", {}).get("deletionTimestamp"):
        return (
            Unresolved(
                CUSTOM_SIGNATURES_NOT_FOUND,
                f"{field}: ConfigMap {namespace}/{ref.name} does not exist; create it in the "
                f"tenant namespace with the signature files "
                f"({', '.join('*' + e for e in SIGNATURE_EXTENSIONS[:3])}, ...) as keys",
            ),
        )
    keys = sorted({*(found.get("data") or {}), *(found.get("binaryData") or {})})
    wrong = [key for key in keys if not key.endswith(SIGNATURE_EXTENSIONS)]
    if wrong or not keys:
        what = (
            f"keys {', '.join(repr(k) for k in wrong[:10])} are not ClamAV signature files"
            if wrong
            else "it holds no signature file"
        )
        return (
            Unresolved(
                CUSTOM_SIGNATURES_INVALID,
                f"{field}: ConfigMap {namespace}/{ref.name}: {what}; every key must end with "
                f"one of {', '.join(SIGNATURE_EXTENSIONS)}",
            ),
        )
    return ()


def bind_secret_problems(
    spec: SecureWebGatewaySpec,
    secret: Mapping[str, Any] | None,
    *,
    readable: bool,
    namespace: str,
) -> tuple[Unresolved, ...]:
    """The directory bind Secret the spec names (authentication.ldap.bindSecret): it must exist
    and, when the operator may read it, hold a non-empty `password` key (the proxy pods mount
    that key alone: without it they cannot start). The value is never looked at beyond that,
    and never reported."""
    ldap = spec.authentication.ldap
    if ldap is None:
        return ()
    field = "spec.authentication.ldap.bindSecret.name"
    name = ldap.bind_secret.name
    if secret is None:
        return (
            Unresolved(
                LDAP_BIND_SECRET_NOT_FOUND,
                f"{field}: Secret {namespace}/{name} does not exist; create it in the tenant "
                f"namespace with the bind password under the key {BIND_PASSWORD_KEY!r}",
            ),
        )
    if readable and not (secret.get("data") or {}).get(BIND_PASSWORD_KEY):
        return (
            Unresolved(
                LDAP_BIND_SECRET_INVALID,
                f"{field}: Secret {namespace}/{name} has no key {BIND_PASSWORD_KEY!r} (or it is "
                f"empty); put the directory bind password under that key",
            ),
        )
    return ()
