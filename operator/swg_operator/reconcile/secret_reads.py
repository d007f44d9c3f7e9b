"""Reading a Secret the spec names, as far as the operator may, and remembering what was found.

The operator holds `create` on Secrets and `get` by name on the ones it generates only (the
chart grants no read of a customer's Secret: its name is the customer's). `read_secret` reads a
Secret by name and, refused (403), asks only whether it exists, with a dry-run create (nothing
is stored; 409 AlreadyExists means it exists). `SecretMemory` keeps what a reconcile verified
(`reconcile.secret_checks`), so a reconcile of an unchanged tenant reads nothing again.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from swg_operator.kube import KubeApi, KubeApiError
from swg_operator.kube.kinds import SECRET
from swg_operator.reconcile.secret_checks import Purpose, SecretCheck, SecretChecks


def existence_probe(name: str, namespace: str) -> dict[str, Any]:
    """An empty Secret to dry-run create: 409 AlreadyExists says `name` exists."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "type": "Opaque",
    }


async def secret_exists(kube: KubeApi, name: str, *, namespace: str) -> bool:
    """Whether Secret `namespace/name` exists, without reading it (a dry-run create)."""
    return not await kube.create(existence_probe(name, namespace), dry_run=True)


UNREADABLE: Final[dict[str, Any]] = {}


async def read_secret(kube: KubeApi, name: str, *, namespace: str) -> Mapping[str, Any] | None:
    """Secret `namespace/name` (None: it does not exist), or `UNREADABLE` when the operator may
    not read it (403: then whether it exists is asked with a dry-run create)."""
    try:
        return await kube.get(SECRET, name, namespace=namespace)
    except KubeApiError as exc:
        if exc.status != 403:
            raise
    exists = await secret_exists(kube, name, namespace=namespace)
    return UNREADABLE if exists else None


@dataclass(frozen=True)
class SecretMemory:
    """Where a reconcile remembers what it verified of the Secrets a spec names
    (`reconcile.secret_checks`): the tenant, its generation and the context's checks (None:
    remember nothing)."""

    tenant: str
    generation: int = 0
    checks: SecretChecks | None = None

    def recall(self, purpose: Purpose, key: str, now: datetime.datetime) -> SecretCheck | None:
        if self.checks is None:
            return None
        return self.checks.recall(self.tenant, purpose, basis=key, now=now)

    def remember(self, purpose: Purpose, check: SecretCheck | None) -> None:
        if self.checks is None:
            return
        if check is None:
            self.checks.drop(self.tenant, purpose)
        else:
            self.checks.remember(self.tenant, purpose, check)
