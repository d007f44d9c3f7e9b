"""What the reconcile and the purge share: the `Context` built once when the operator starts, the
`Outcome` of a reconcile, and the error kinds with the one guard that sorts API errors into them.

Errors come in three kinds: a spec the operator cannot honour (`Stalled`, not retried until the
spec changes), a transient API error (`TransientError`: 409, 410, 429, 5xx, no answer, a write
refused by a ResourceQuota; retried with backoff, after `retry_after` seconds at least when the
API server said so), and anything else, a bug (logged loudly, `Degraded`, re-raised).
"""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from swg_operator import __version__
from swg_operator.api import OperatorSettings, SecureWebGatewayStatus
from swg_operator.capacity import Capacity
from swg_operator.kube import KubeApi, KubeApiError
from swg_operator.kube.cache import WatchCache
from swg_operator.naming import tenant_namespace
from swg_operator.reconcile.lifecycle import ClockMode, Deadline
from swg_operator.reconcile.plan import ObjectKey
from swg_operator.reconcile.secret_checks import SecretChecks
from swg_operator.reconcile.storage import StorageClasses, exceeded_quota
from swg_operator.sizing_io import load_capacity

T = TypeVar("T")


class TransientError(Exception):
    """The API server could not serve the reconcile now; retry with backoff (no sooner than
    `retry_after` seconds when the server asked for that)."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class QuotaExceededError(TransientError):
    """A write refused by a ResourceQuota (403 `exceeded quota`): the quota's usage may be
    recomputed by then (or, for the log claim, the charged quota deleted: see
    `reconcile.loop.recover_claim_charge`); retry with backoff."""


async def guard(call: Awaitable[T]) -> T:
    """Await `call`, turning transient API errors into `TransientError` (a quota refusal into
    `QuotaExceededError`); the other errors go through as they are."""
    try:
        return await call
    except KubeApiError as exc:
        if exc.transient:
            raise TransientError(str(exc), retry_after=exc.retry_after) from exc
        if exceeded_quota(exc):
            raise QuotaExceededError(str(exc)) from exc
        raise


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@dataclass(frozen=True)
class PurgePolicy:
    """How the purge deadline is judged (see `reconcile.lifecycle`)."""

    clock: ClockMode = ClockMode.SERVER
    local_margin: datetime.timedelta = datetime.timedelta(minutes=10)
    max_wait: float = 3600.0


@dataclass
class Context:
    """What every reconcile needs; built once when the operator starts. Without `cache` (the
    tests, the tools) the reconcile observes with LISTs; the running operator passes the cache
    its watches feed."""

    kube: KubeApi
    settings: OperatorSettings
    purge: PurgePolicy = PurgePolicy()
    capacity: Capacity = field(default_factory=load_capacity)
    clock: Callable[[], datetime.datetime] = utcnow
    version: str = __version__
    cache: WatchCache | None = None
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    # Per object: (digest applied, resourceVersion answered); see `plan_changes`. The watch
    # event of an object whose resourceVersion is the one answered is the operator's own echo.
    applied: dict[ObjectKey, tuple[str, str]] = field(default_factory=dict)
    # Per tenant: the resourceVersion the last status patch answered with (its echo).
    status_versions: dict[str, str] = field(default_factory=dict)
    # Per tenant: what was last verified of its CA Secrets (not watched; `secret_checks`).
    secret_checks: SecretChecks = field(default_factory=SecretChecks)
    # The StorageClasses found to exist (not watched; `reconcile.storage`), for every tenant.
    storage_classes: StorageClasses = field(default_factory=StorageClasses)
    # Tenants whose namespace was searched for the admins' Role of older versions.
    legacy_checked: set[str] = field(default_factory=set)
    # Tenants whose last-seen operator version was compared with this one (`reconcile.notices`).
    version_checked: set[str] = field(default_factory=set)
    # (tenant, notice id) of the notices this process recorded that a later pass would record
    # again (the cancellation's, on every recheck until the purge): recorded once per process.
    notices_kept: set[tuple[str, str]] = field(default_factory=set)
    # The purge receipts' signing key (`receipts.signing_key`); None: receipts are unsigned.
    receipt_key: Ed25519PrivateKey | None = None
    # Called after a notice is recorded: wakes the outbox (`notices.Dispatcher.wake`).
    wake_mail: Callable[[], None] | None = None

    def lock(self, tenant: str) -> asyncio.Lock:
        """One reconcile per tenant at a time, whichever handler asked for it."""
        return self._locks.setdefault(tenant, asyncio.Lock())

    def forget_tenant(self, tenant: str) -> None:
        """The tenant is gone (purged): drop what was kept for it and its namespace's objects."""
        namespace = tenant_namespace(tenant)
        for key in [k for k in self.applied if namespace in (k.namespace, k.name)]:
            del self.applied[key]
        self.status_versions.pop(tenant, None)
        self.secret_checks.forget(tenant)
        self.legacy_checked.discard(tenant)
        self.version_checked.discard(tenant)
        self.notices_kept -= {kept for kept in self.notices_kept if kept[0] == tenant}
        lock = self._locks.get(tenant)
        if lock is not None and not lock.locked():
            del self._locks[tenant]

    def is_echo(self, obj: Any) -> bool:
        """True when `obj` (a watched object) is as the operator's own last write left it."""
        meta = obj.get("metadata") or {}
        version = str(meta.get("resourceVersion") or "")
        if not version:
            return False
        if obj.get("kind") == "SecureWebGateway":
            return self.status_versions.get(str(meta.get("name"))) == version
        key = ObjectKey(
            str(obj.get("apiVersion", "")),
            str(obj.get("kind", "")),
            meta.get("namespace") or None,
            str(meta.get("name", "")),
        )
        remembered = self.applied.get(key)
        return remembered is not None and remembered[1] == version


@dataclass(frozen=True)
class Outcome:
    """What a reconcile did, for the handlers, the purge and the tests."""

    status: SecureWebGatewayStatus
    result: str  # ok, invalid_spec, not_owned
    writes: int  # objects applied or pruned
    deadline: Deadline | None = None  # the purge deadline of a cancelled tenant
