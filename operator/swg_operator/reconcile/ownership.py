"""Which namespace the operator may manage for a tenant: only one it created for that tenant.

The operator creates the tenant namespace `swg-<tenant>` itself, with a POST (refused when the
name is taken, so it never writes over a namespace someone else made), stamped with the tenant's
UID (annotation `swg.dev/tenant-uid`). It applies, prunes and purges in a namespace only when
that stamp is the tenant's UID. A namespace that exists without it (made by anyone: the
operator's own, a platform namespace, one created ahead of the tenant), or stamped for another
tenant of the same name, and every namespace the platform reserves, makes the tenant `Stalled`:
nothing in it is touched, and the purge deletes nothing of it.

Namespaces made by earlier versions carry the ownership labels but no stamp. One is adopted
(stamped, with an `Adopted` Event) only when all of these hold, each of which a person who can
merely create namespaces cannot bring about:

* its labels are the tenant's (`app.kubernetes.io/managed-by=swg-operator`,
  `swg.dev/tenant=<tenant>`);
* the tenant's status names it (`status.namespace`): an operator reconciled the tenant into it
  (the status subresource is written by the operator, not by those who create tenants);
* it was created no earlier than the tenant (`creationTimestamp`): a namespace that predates
  its tenant was not made for it.

Pure: no I/O.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from swg_operator.api import OperatorSettings
from swg_operator.labels import selector_for

TENANT_UID_ANNOTATION: Final = "swg.dev/tenant-uid"
# Namespaces of every cluster, never a tenant's (a tenant namespace is `swg-<name>`, so only the
# operator's own and the settings' `reservedNamespaces` can collide; these are here for safety).
SYSTEM_NAMESPACES: Final = frozenset({"default", "kube-system", "kube-public", "kube-node-lease"})


class Ownership(StrEnum):
    ABSENT = "Absent"  # to be created (create-only)
    OWNED = "Owned"  # stamped with the tenant's UID
    LEGACY = "Legacy"  # made by an earlier version for this tenant: adopted (stamped)
    NOT_OWNED = "NamespaceNotOwned"
    RESERVED = "NamespaceReserved"


@dataclass(frozen=True)
class Verdict:
    state: Ownership
    namespace: str
    message: str = ""

    @property
    def manageable(self) -> bool:
        """The reconcile may create, apply and prune in the namespace."""
        return self.state in (Ownership.ABSENT, Ownership.OWNED, Ownership.LEGACY)

    @property
    def deletable(self) -> bool:
        """The purge may delete the namespace with everything in it."""
        return self.state in (Ownership.OWNED, Ownership.LEGACY)


def reserved_namespaces(settings: OperatorSettings) -> frozenset[str]:
    """The namespaces no tenant may have: the operator's own, the ones the chart's settings
    name (cluster DNS, the signature mirror) and `reservedNamespaces`, and the system ones."""
    names = {settings.operator_namespace, settings.dns_namespace, *settings.reserved_namespaces}
    mirror = settings.antivirus.freshclam.mirror_pods
    if mirror is not None:
        names.add(mirror.namespace)
    return frozenset(names) | SYSTEM_NAMESPACES


def judge(
    body: Mapping[str, Any],
    namespace: str,
    found: Mapping[str, Any] | None,
    settings: OperatorSettings,
) -> Verdict:
    """May the operator manage `namespace` (as `found` on the API server, None when absent) for
    the tenant `body`?"""
    meta = body.get("metadata") or {}
    if namespace in reserved_namespaces(settings):
        return Verdict(
            Ownership.RESERVED,
            namespace,
            f"Namespace {namespace} is reserved (the operator's or the platform's): no tenant "
            f"may use it; rename the {meta.get('name')!s} tenant",
        )
    if found is None:
        return Verdict(Ownership.ABSENT, namespace)
    found_meta = found.get("metadata") or {}
    stamp = (found_meta.get("annotations") or {}).get(TENANT_UID_ANNOTATION)
    uid = str(meta.get("uid") or "")
    if stamp is not None:
        if uid and stamp == uid:
            return Verdict(Ownership.OWNED, namespace)
        return Verdict(
            Ownership.NOT_OWNED,
            namespace,
            f"Namespace {namespace} was created for another tenant of that name (UID {stamp}): "
            "it is left as it is until it is gone",
        )
    if _legacy(body, namespace, found_meta):
        return Verdict(Ownership.LEGACY, namespace)
    return Verdict(
        Ownership.NOT_OWNED,
        namespace,
        f"Namespace {namespace} exists and was not created by the operator for this tenant: "
        "nothing in it is touched; delete it or rename the tenant",
    )


def _legacy(body: Mapping[str, Any], namespace: str, found_meta: Mapping[str, Any]) -> bool:
    meta = body.get("metadata") or {}
    labels = found_meta.get("labels") or {}
    if not selector_for(str(meta.get("name", ""))).items() <= labels.items():
        return False
    status = body.get("status")
    if not isinstance(status, Mapping) or status.get("namespace") != namespace:
        return False
    created, tenant_created = found_meta.get("creationTimestamp"), meta.get("creationTimestamp")
    # RFC 3339 UTC to the second, as the API server writes both: they compare as text.
    return bool(created and tenant_created) and str(created) >= str(tenant_created)


def stamp(
    objects: Iterable[Mapping[str, Any]], namespace: str, uid: str
) -> tuple[dict[str, Any], ...]:
    """`objects` with the tenant's UID stamped on its Namespace `namespace`."""
    out = []
    for obj in objects:
        copied = dict(obj)
        if obj.get("kind") == "Namespace" and obj.get("metadata", {}).get("name") == namespace:
            copied = copy.deepcopy(copied)
            copied["metadata"].setdefault("annotations", {})[TENANT_UID_ANNOTATION] = uid
        out.append(copied)
    return tuple(out)


def namespace_ready(objects: Iterable[Mapping[str, Any]], namespace: str) -> bool:
    """True when `objects` hold the tenant's Namespace and it is not being deleted."""
    return any(
        o.get("kind") == "Namespace"
        and o.get("metadata", {}).get("name") == namespace
        and not o.get("metadata", {}).get("deletionTimestamp")
        for o in objects
    )
