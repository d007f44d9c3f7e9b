"""The Secrets of the customer's LDAP directory (spec.authentication.ldap): the bind Secret
(`bindSecret`, its `password` key) and the directory's CA (`caSecret`, PEM certificates under
`ca.crt`). The proxy pods mount one key of each; a Secret or key missing keeps them from
starting, and a `ca.crt` that holds no certificate fails every connection to the directory.

Each must exist (`LDAPBindSecretNotFound`, `LDAPCASecretNotFound`). When the operator may read
it (not with the chart's RBAC alone: `reconcile.secret_reads`), the bind Secret must hold a
non-empty password (`LDAPBindSecretInvalid`, the value never looked at beyond that) and the CA
Secret PEM certificates and nothing else (`LDAPCASecretInvalid`). A Secret found sound is
remembered (`reconcile.secret_checks`) while the spec stays the same, for `RECHECK` at most, so
an unchanged tenant costs no read; one with a problem is read again on every reconcile, so that
its fix is seen at the next.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import re
from collections.abc import Callable, Mapping
from typing import Any, Final

from cryptography import x509

from swg_operator.api import SecureWebGatewaySpec
from swg_operator.api.authentication import LDAP_CA_KEY
from swg_operator.kube import KubeApi
from swg_operator.reconcile.references import bind_secret_problems
from swg_operator.reconcile.secret_checks import Purpose, SecretCheck, basis, identity
from swg_operator.reconcile.secret_reads import UNREADABLE, SecretMemory, read_secret
from swg_operator.reconcile.status import Unresolved

LDAP_CA_SECRET_NOT_FOUND: Final = "LDAPCASecretNotFound"  # noqa: S105 - a condition reason
LDAP_CA_SECRET_INVALID: Final = "LDAPCASecretInvalid"  # noqa: S105 - a condition reason
CA_FIELD: Final = "spec.authentication.ldap.caSecret.name"

_PEM_LABEL = re.compile(rb"-----BEGIN ([^-\r\n]*)-----")

# What a Secret is judged by: (spec, the Secret or None, readable, namespace) -> problems.
Judge = Callable[
    [SecureWebGatewaySpec, Mapping[str, Any] | None, bool, str], tuple[Unresolved, ...]
]


def ca_text_problem(data: bytes) -> str | None:
    """Why `data` (the decoded `ca.crt`) is not one or more PEM certificates, or None."""
    labels = {label.decode("ascii", "replace") for label in _PEM_LABEL.findall(data)}
    if not labels:
        return "holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
    others = sorted(labels - {"CERTIFICATE"})
    if others:
        return f"holds PEM blocks other than certificates ({', '.join(others)})"
    try:
        x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        return f"holds a certificate that cannot be parsed ({exc})"
    return None


def _ca_data(secret: Mapping[str, Any]) -> bytes | None:
    value = (secret.get("data") or {}).get(LDAP_CA_KEY)
    if not isinstance(value, str) or not value:
        return None
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


def ca_secret_problems(
    spec: SecureWebGatewaySpec, secret: Mapping[str, Any] | None, readable: bool, namespace: str
) -> tuple[Unresolved, ...]:
    """The directory's CA Secret (authentication.ldap.caSecret), as read (None: it does not
    exist; `readable` False: only its existence is known)."""
    ldap = spec.authentication.ldap
    if ldap is None or ldap.ca_secret is None:
        return ()
    name = ldap.ca_secret.name
    if secret is None:
        return (
            Unresolved(
                LDAP_CA_SECRET_NOT_FOUND,
                f"{CA_FIELD}: Secret {namespace}/{name} does not exist; create it in the tenant "
                f"namespace with the directory's CA certificate(s), PEM, under the key "
                f"{LDAP_CA_KEY!r}",
            ),
        )
    if not readable:
        return ()
    data = _ca_data(secret)
    problem = f"has no key {LDAP_CA_KEY!r} (or it is empty)" if data is None else None
    problem = problem or ca_text_problem(data or b"")
    if problem is None:
        return ()
    return (
        Unresolved(
            LDAP_CA_SECRET_INVALID,
            f"{CA_FIELD}: Secret {namespace}/{name} {problem}; put the PEM certificate(s) of "
            f"the CA that signed the directory's certificate under the key {LDAP_CA_KEY!r}",
        ),
    )


def _bind_problems(
    spec: SecureWebGatewaySpec, secret: Mapping[str, Any] | None, readable: bool, namespace: str
) -> tuple[Unresolved, ...]:
    return bind_secret_problems(spec, secret, readable=readable, namespace=namespace)


async def _check(
    kube: KubeApi,
    spec: SecureWebGatewaySpec,
    name: str,
    *,
    purpose: Purpose,
    judge: Judge,
    namespace: str,
    now: datetime.datetime,
    memory: SecretMemory,
) -> tuple[Unresolved, ...]:
    """Read Secret `name` unless remembered sound, judge it, remember it when sound."""
    key = basis(namespace, name, memory.generation)
    if memory.recall(purpose, key, now) is not None:
        return ()
    secret = await read_secret(kube, name, namespace=namespace)
    readable = secret is not UNREADABLE
    problems = judge(spec, secret, readable, namespace)
    sound = None
    if secret is not None and not problems:
        sound = SecretCheck(key, now, *identity(secret), readable=readable)
    memory.remember(purpose, sound)
    return problems


async def check_directory_secrets(
    kube: KubeApi,
    spec: SecureWebGatewaySpec,
    *,
    namespace: str,
    now: datetime.datetime,
    memory: SecretMemory | None = None,
) -> tuple[Unresolved, ...]:
    """The bind Secret and, when the spec names one, the CA Secret of the directory."""
    ldap = spec.authentication.ldap
    if ldap is None:
        return ()
    memory = memory or SecretMemory("")
    wanted = [(ldap.bind_secret.name, Purpose.BIND, _bind_problems)]
    if ldap.ca_secret is not None:
        wanted.append((ldap.ca_secret.name, Purpose.DIRECTORY_CA, ca_secret_problems))
    problems: tuple[Unresolved, ...] = ()
    for name, purpose, judge in wanted:
        problems += await _check(
            kube,
            spec,
            name,
            purpose=purpose,
            judge=judge,
            namespace=namespace,
            now=now,
            memory=memory,
        )
    return problems
