"""The HTTPS-inspection CA the operator generates for a tenant whose spec names none (ISO/IEC
27017 10.1.1: a CA per tenant whose key never leaves the tenant namespace), and the checks of the CA
the proxy will use, generated or the customer's.

Part of the shell, not of the pure core: a key is fresh randomness. The renderer only ever gets
the CA's certificate (public) and publishes it in the ConfigMap `https-inspection-ca-cert`.

Created once, read back by name only:
* the Secret is created with a POST, which the API server refuses with 409 AlreadyExists when
  the name is taken, so an existing CA is never replaced, by this operator or a restarted one;
* the operator holds `create` on Secrets, and `get` limited by name to `https-inspection-ca`
  (no list, watch, patch or delete): the reconcile reads that one Secret to learn whether it
  exists and whether its key and certificate are the certificate published for the admins
  (`InspectionCAMismatch` when not: left by an earlier version, or replaced by hand);
* a customer's CA Secret (`caSecret`) is read when the platform lets the operator read it (the
  chart does not: its name is the customer's); refused (403), the operator only asks whether it
  exists, with a dry-run create (`reconcile.secret_reads`);
* the published certificate is the admins' record of the CA. When it is missing while the
  Secret exists (deleted by hand), the operator does not publish another and says so
  (`InspectionCAUnpublished`); deleting the Secret has a new CA generated;
* the CA's expiry is judged on every reconcile (`InspectionCAExpiring`, a Warning Event when it
  turns True); rotation is deleting the Secret;
* what a read found is remembered (`reconcile.secret_checks`): the Secret is read again only
  when the published certificate, the spec or the tenant's generation changed, or ten minutes
  have passed, so a reconcile of an unchanged tenant asks nothing.
"""

from __future__ import annotations

import datetime
import hashlib
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from swg_operator.api import KIND, SecureWebGatewaySpec, SecureWebGatewayStatus
from swg_operator.kube import KubeApi
from swg_operator.labels import component_labels
from swg_operator.naming import (
    Component,
    inspection_ca_certificate_name,
    inspection_ca_secret_name,
)
from swg_operator.reconcile.actions import notify
from swg_operator.reconcile.ca_pair import (
    GeneratedPair,
    certificate_expiry,
    customer_ca_problems,
    expired_ca,
    generated_ca_problems,
    generated_tls_secret,
    pem_pair,
    self_signed,
    tls_pair,
)
from swg_operator.reconcile.ownership import namespace_ready
from swg_operator.reconcile.references import (
    ca_secret_problems,
    published_certificate,
    unpublished_ca,
)
from swg_operator.reconcile.secret_checks import Purpose, SecretCheck, basis, identity
from swg_operator.reconcile.secret_reads import UNREADABLE, SecretMemory, read_secret
from swg_operator.reconcile.status import INSPECTION_CA_EXPIRING, CaExpiry, Unresolved

logger = logging.getLogger("swg_operator.reconcile")

# RSA 3072 (about 128-bit security, NIST SP 800-57) rather than ECDSA: Squid's certificate
# generator, the clients' trust stores and the data-plane tests all take RSA CAs as they are.
KEY_BITS: Final = 3072
VALIDITY: Final = datetime.timedelta(days=730)
# Certificates start a little in the past: a client whose clock is behind still accepts them.
BACKDATE: Final = datetime.timedelta(hours=1)
ORGANIZATIONAL_UNIT: Final = "swg-operator HTTPS inspection"


GeneratedCa = GeneratedPair  # the HTTPS-inspection CA's certificate and key


def generate_inspection_ca(
    *, tenant: str, service_code: str, now: datetime.datetime
) -> GeneratedCa:
    """A new self-signed CA for HTTPS inspection: CA:TRUE with path length 0 (it signs the
    proxy's per-site certificates only), key usage keyCertSign and cRLSign, valid two years,
    named after the tenant (O) and its service code (CN)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    authority = x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key())
    certificate = self_signed(
        key,
        names=(tenant, ORGANIZATIONAL_UNIT, f"{service_code} HTTPS inspection CA"),
        now=now,
        backdate=BACKDATE,
        validity=VALIDITY,
        ca=True,
        extensions=(authority,),
    )
    return pem_pair(certificate, key)


def inspection_ca_secret(
    ca: GeneratedCa, *, tenant: str, namespace: str, service_code: str
) -> dict[str, Any]:
    """The generated CA's Secret, which the proxy mounts."""
    return generated_tls_secret(
        ca,
        name=inspection_ca_secret_name(),
        namespace=namespace,
        labels=component_labels(tenant, Component.PROXY, service_code=service_code),
    )


def _ca_field(customer: bool) -> str:
    return (
        "spec.options.httpsInspection.caSecret.name" if customer else "spec.options.httpsInspection"
    )


@dataclass(frozen=True)
class InspectionCa:
    """Where the generated CA stands after `settle_inspection_ca`."""

    certificate: str | None = None  # to publish (None: nothing known to publish)
    pending: Mapping[str, Any] | None = None  # a Secret to create once the namespace exists
    created: bool = False  # a new CA was created in this reconcile
    retract: bool = False  # the certificate just published is not the Secret's: unpublish it
    unresolved: tuple[Unresolved, ...] = ()
    expiry: CaExpiry | None = None  # the CA in use, when its certificate is known
    basis: str | None = None  # what the pending Secret, once created, is known to match


def _digest(text: str | None) -> str | None:
    return None if text is None else hashlib.sha256(text.encode()).hexdigest()


def _settings(spec: SecureWebGatewaySpec) -> str:
    return spec.options.https_inspection.model_dump_json()


async def _generated_check(
    kube: KubeApi,
    *,
    namespace: str,
    published: str | None,
    key: str,
    now: datetime.datetime,
) -> SecretCheck | None:
    """Read the generated CA's Secret and judge it against the published certificate (None:
    the Secret does not exist)."""
    name = inspection_ca_secret_name()
    secret = await read_secret(kube, name, namespace=namespace)
    if secret is None:
        return None
    readable = secret is not UNREADABLE
    problems: tuple[Unresolved, ...] = ()
    if published is None:
        problems = (unpublished_ca(namespace),)
    elif readable:
        problems = generated_ca_problems(
            secret,
            published,
            namespace=namespace,
            secret_name=name,
            config_map=inspection_ca_certificate_name(),
        )
    uid, version = identity(secret) if readable else ("", "")
    return SecretCheck(key, now, uid, version, readable, problems)


async def settle_inspection_ca(
    kube: KubeApi,
    *,
    tenant: str,
    spec: SecureWebGatewaySpec,
    namespace: str,
    observed: Iterable[Mapping[str, Any]],
    now: datetime.datetime,
    create: bool = True,
    memory: SecretMemory | None = None,
) -> InspectionCa:
    """Make sure the generated CA exists (once) and learn the certificate to publish.

    The Secret still there (read by name, or as remembered in `memory`): keep it, and its
    published certificate, and say so when the Secret's key or certificate is not the published
    one (`InspectionCAMismatch`); with none published, it is not published anew
    (`InspectionCAUnpublished`). The Secret missing: a new CA is generated and is `pending`: its
    certificate is published (applied with the tenant's objects) and only then `create_pending`
    creates the Secret, so a published certificate is never left beside a Secret holding
    another CA. With `create` False (a cancelled tenant) nothing is asked or made: the published
    certificate stays.
    """
    observed = list(observed)
    published = published_certificate(observed, namespace)
    if not create:
        return InspectionCa(certificate=published)
    memory = memory or SecretMemory(tenant)
    name = inspection_ca_secret_name()
    where = f"ConfigMap {namespace}/{inspection_ca_certificate_name()}"
    check: SecretCheck | None = None
    if namespace_ready(observed, namespace):
        key = basis(namespace, name, _digest(published), memory.generation, _settings(spec))
        check = memory.recall(Purpose.GENERATED, key, now)
        if check is None:
            check = await _generated_check(
                kube, namespace=namespace, published=published, key=key, now=now
            )
            memory.remember(Purpose.GENERATED, check)
    if check is not None:
        if published is None:
            return InspectionCa(unresolved=check.problems)
        expiry = certificate_expiry(published, now=now, where=where)
        problems = check.problems + expired_ca(expiry, customer=False, field=_ca_field(False))
        return InspectionCa(certificate=published, unresolved=problems, expiry=expiry)
    ca = generate_inspection_ca(tenant=tenant, service_code=spec.service_code, now=now)
    pending = inspection_ca_secret(
        ca, tenant=tenant, namespace=namespace, service_code=spec.service_code
    )
    # Published first, created second (`create_pending`, after the certificate is applied):
    # whichever write is lost (an API error, the operator killed in between), the next
    # reconcile finds the Secret missing and starts again with a new CA. The other order could
    # leave a new Secret beside the old published certificate for good, as the operator cannot
    # only tell, not repair, by reading the Secret.
    return InspectionCa(
        certificate=ca.certificate,
        pending=pending,
        expiry=certificate_expiry(ca.certificate, now=now, where=where),
        basis=basis(namespace, name, _digest(ca.certificate), memory.generation, _settings(spec)),
    )


async def create_pending(
    kube: KubeApi,
    ca: InspectionCa,
    *,
    namespace: str,
    memory: SecretMemory | None = None,
    now: datetime.datetime | None = None,
) -> InspectionCa:
    """Create the CA generated before its namespace existed. Refused (the name was taken: a
    namespace made by hand, with a Secret of that name), the certificate already published with
    the namespace is not the Secret's and must be taken back (`retract`). Created, the Secret is
    known to hold the published CA: remembered as checked, the next reconcile reads nothing."""
    if ca.pending is None:
        return ca
    if await kube.create(ca.pending):
        if memory is not None and ca.basis is not None and now is not None:
            memory.remember(Purpose.GENERATED, SecretCheck(ca.basis, now, "", "", readable=True))
        return InspectionCa(certificate=ca.certificate, created=True, expiry=ca.expiry)
    return InspectionCa(retract=True, unresolved=(unpublished_ca(namespace),))


async def _customer_check(
    kube: KubeApi, name: str, *, namespace: str, key: str, now: datetime.datetime
) -> SecretCheck | None:
    """Read the customer's CA Secret and judge its pair (None: it does not exist)."""
    secret = await read_secret(kube, name, namespace=namespace)
    if secret is None:
        return None
    if secret is UNREADABLE:
        return SecretCheck(key, now, "", "", readable=False)
    uid, version = identity(secret)
    return SecretCheck(
        key,
        now,
        uid,
        version,
        readable=True,
        problems=customer_ca_problems(secret, namespace=namespace, name=name),
        certificate=tls_pair(secret).certificate,
    )


async def check_customer_ca(
    kube: KubeApi,
    spec: SecureWebGatewaySpec,
    *,
    namespace: str,
    now: datetime.datetime,
    memory: SecretMemory | None = None,
) -> InspectionCa:
    """The CA Secret the spec names: it must exist (`CASecretNotFound`); read when the operator
    may (see the module docstring), its key must be its certificate's (`CASecretMismatch`) and
    its expiry is judged like the generated CA's. What a read found is remembered in `memory`
    while the spec stays the same, for `secret_checks.RECHECK` at most; a missing Secret is
    asked for again on every reconcile."""
    inspection = spec.options.https_inspection
    if not inspection.enabled or inspection.ca_secret is None:
        return InspectionCa()
    memory = memory or SecretMemory("")
    name = inspection.ca_secret.name
    key = basis(namespace, name, memory.generation, _settings(spec))
    check = memory.recall(Purpose.CUSTOMER, key, now)
    if check is None:
        check = await _customer_check(kube, name, namespace=namespace, key=key, now=now)
        memory.remember(Purpose.CUSTOMER, check)
    problems = ca_secret_problems(spec, exists=check is not None, namespace=namespace)
    if check is None or not check.readable:
        return InspectionCa(unresolved=problems)
    expiry = (
        certificate_expiry(check.certificate, now=now, where=f"Secret {namespace}/{name}")
        if check.certificate is not None
        else None
    )
    problems += check.problems
    problems += expired_ca(expiry, customer=True, field=_ca_field(True))
    return InspectionCa(unresolved=problems, expiry=expiry)


async def announce_ca_expiry(
    kube: KubeApi,
    body: Mapping[str, Any],
    *,
    previous: SecureWebGatewayStatus | None,
    status: SecureWebGatewayStatus,
    namespace: str | None,
) -> None:
    """A Warning Event when `InspectionCAExpiring` turns True (or from Expiring to Expired):
    once per change, so an idle tenant costs no write."""
    now = next((c for c in status.conditions if c.type == INSPECTION_CA_EXPIRING), None)
    if now is None or now.status != "True":
        return
    before = next(
        (c for c in (previous.conditions if previous else ()) if c.type == INSPECTION_CA_EXPIRING),
        None,
    )
    if before is not None and (before.status, before.reason) == (now.status, now.reason):
        return
    logger.warning("%s %s: %s", KIND, body["metadata"]["name"], now.message)
    await notify(
        kube,
        body,
        reason=INSPECTION_CA_EXPIRING,
        message=now.message,
        namespace=namespace,
        type_="Warning",
    )
