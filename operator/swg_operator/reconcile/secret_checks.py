"""What the operator last verified of a tenant's Secrets (the HTTPS-inspection CA, the directory
bind Secret and CA), so that a reconcile of an unchanged tenant does not read them again.

Secrets are not watched (the operator may `get` one name, never list or watch: see
`reconcile.secret_reads`), so without a memory every reconcile would `get` the Secret. A check
is remembered per tenant and per purpose (the generated CA, the customer's, the directory's
Secrets) with the basis it rests on: the Secret's name, the spec's CA settings, the tenant's
generation and, for the generated CA, the SHA-256 of the certificate published in the tenant
namespace (as the watch cache shows it).
The Secret is read again when any of these changed, or when `RECHECK` has passed since it was
last read: a Secret deleted or replaced by hand goes unnoticed for that long at most, plus the
wait for the next reconcile, which the resync bounds (docs/operator.md).

Only a Secret found to exist is remembered: a missing one is asked for on every reconcile, so
a customer's Secret created after the tenant is picked up at the next reconcile. A directory
Secret is remembered only when sound (it exists and, when readable, holds its password key or
its CA certificates): one with a problem is read again on every reconcile, so that its fix is
seen at the next. The memory is one entry per tenant and purpose, dropped with the tenant
(`Context.forget_tenant`).
"""

from __future__ import annotations

import datetime
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Final

from cryptography import x509

from swg_operator.reconcile.status import Unresolved

RECHECK: Final = datetime.timedelta(minutes=10)


class Purpose(Enum):
    GENERATED = "generated"  # the CA the operator generated: Secret https-inspection-ca
    CUSTOMER = "customer"  # the Secret named by spec.options.httpsInspection.caSecret
    BIND = "bind"  # the Secret named by spec.authentication.ldap.bindSecret
    DIRECTORY_CA = "directory-ca"  # the Secret named by spec.authentication.ldap.caSecret


def basis(*parts: object) -> str:
    """A digest of what a check rests on (None and strings alike, in order)."""
    text = json.dumps([p if p is None else str(p) for p in parts], separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class SecretCheck:
    """A Secret found to exist, and the judgements that do not depend on the clock (the
    expiry is judged on every reconcile, from `certificate`)."""

    basis: str
    checked_at: datetime.datetime
    uid: str  # the Secret's uid and resourceVersion when read ("" when unreadable or created)
    resource_version: str
    readable: bool  # False: the operator may not read it (it exists: a dry-run create said so)
    problems: tuple[Unresolved, ...] = ()
    certificate: x509.Certificate | None = None  # the customer CA's, for its expiry


def identity(secret: Mapping[str, Any]) -> tuple[str, str]:
    meta = secret.get("metadata") or {}
    return str(meta.get("uid") or ""), str(meta.get("resourceVersion") or "")


@dataclass
class SecretChecks:
    """The checks remembered, at most one per tenant and purpose."""

    recheck: datetime.timedelta = RECHECK
    _checks: dict[tuple[str, Purpose], SecretCheck] = field(default_factory=dict)

    def recall(
        self, tenant: str, purpose: Purpose, *, basis: str, now: datetime.datetime
    ) -> SecretCheck | None:
        """The remembered check when it still holds: same basis, read less than `recheck` ago
        (a clock that went back counts as stale)."""
        check = self._checks.get((tenant, purpose))
        if check is None or check.basis != basis:
            return None
        if not check.checked_at <= now < check.checked_at + self.recheck:
            return None
        return check

    def remember(self, tenant: str, purpose: Purpose, check: SecretCheck) -> None:
        self._checks[(tenant, purpose)] = check

    def drop(self, tenant: str, purpose: Purpose) -> None:
        self._checks.pop((tenant, purpose), None)

    def forget(self, tenant: str) -> None:
        for purpose in Purpose:
            self._checks.pop((tenant, purpose), None)

    def __len__(self) -> int:
        return len(self._checks)
