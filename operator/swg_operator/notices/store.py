"""Where the notices live: one ConfigMap per tenant, written with optimistic concurrency.

The history and the mail state are in the ConfigMap `tenant-notices` of the tenant namespace,
which the tenant's admins may read (`kubectl swg notices`) and which goes with the namespace when
the tenant is purged. The purge notice itself cannot live there (the namespace is gone): it is
recorded in `purged-notices-<tenant>` in the operator's namespace, which the outbox deletes once
its mail is settled and its notices are older than the history keeps.

Every write is a merge patch carrying the `resourceVersion` the change was computed from, so the
API server refuses it (409) when anything else wrote in between, and the change is computed again
on what is stored: two writers never overwrite each other's deliveries. The ConfigMap carries
the tenant label but not `app.kubernetes.io/managed-by`: the reconcile prunes what carries both
and is not rendered, and watches it for drift; this object is written here, never rendered, and
its writes must not wake a reconcile.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from swg_operator.kube import KubeApi, KubeApiError
from swg_operator.kube.kinds import CONFIG_MAP
from swg_operator.labels import APP_NAME, NAME_KEY, PART_OF_KEY, SERVICE_CODE_KEY, TENANT_KEY
from swg_operator.naming import (
    label_value,
    notices_config_map_name,
    purged_notices_config_map_name,
    tenant_label_value,
    tenant_namespace,
)
from swg_operator.notices.model import History, Notice, add, decode, encode

logger = logging.getLogger("swg_operator.notices")

NOTICES_LABEL: Final = "swg.dev/notices"
PURGED_LABEL: Final = "swg.dev/notices-of-purged-tenant"
WRITE_ATTEMPTS: Final = 8


class Unknown:
    """Not known to the caller: `update` reads the ConfigMap itself."""


UNKNOWN: Final = Unknown()


class ConflictError(RuntimeError):
    """The ConfigMap changed under every attempt to write it (WRITE_ATTEMPTS times)."""


@dataclass(frozen=True)
class Box:
    """One notices ConfigMap: where it is, and whose notices it holds."""

    namespace: str
    name: str
    tenant: str
    service_code: str = ""
    purged: bool = False  # in the operator's namespace, for a tenant whose namespace is gone


def tenant_box(tenant: str, *, service_code: str = "") -> Box:
    return Box(tenant_namespace(tenant), notices_config_map_name(), tenant, service_code)


def purged_box(tenant: str, *, operator_namespace: str, service_code: str = "") -> Box:
    return Box(
        operator_namespace,
        purged_notices_config_map_name(tenant),
        tenant,
        service_code,
        purged=True,
    )


def box_of(obj: dict[str, Any]) -> Box:
    """The `Box` a listed notices ConfigMap is."""
    meta = obj["metadata"]
    labels = meta.get("labels") or {}
    return Box(
        namespace=meta["namespace"],
        name=meta["name"],
        tenant=str((meta.get("annotations") or {}).get(TENANT_KEY, labels.get(TENANT_KEY, ""))),
        service_code=str(labels.get(SERVICE_CODE_KEY, "")),
        purged=labels.get(PURGED_LABEL) == "true",
    )


def manifest(box: Box, history: History) -> dict[str, Any]:
    labels = {
        TENANT_KEY: tenant_label_value(box.tenant),
        NAME_KEY: APP_NAME,
        PART_OF_KEY: APP_NAME,
        NOTICES_LABEL: "true",
    }
    if box.service_code:
        labels[SERVICE_CODE_KEY] = label_value(box.service_code)
    if box.purged:
        labels[PURGED_LABEL] = "true"
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": box.name,
            "namespace": box.namespace,
            "labels": labels,
            # The full tenant name (a label value may be shortened with a digest).
            "annotations": {TENANT_KEY: box.tenant},
        },
        "data": encode(history),
    }


async def read(kube: KubeApi, box: Box) -> tuple[History, str | None]:
    """The stored history and its resourceVersion (None when the ConfigMap does not exist).
    Found with a list by name: the operator lists ConfigMaps anyway, and needs no `get`."""
    return _decoded(await kube.find_named(CONFIG_MAP, box.name, namespace=box.namespace))


async def update(
    kube: KubeApi,
    box: Box,
    change: Callable[[History], History],
    *,
    annotations: Mapping[str, str] | None = None,
    known: Mapping[str, Any] | Unknown | None = UNKNOWN,
) -> History:
    """Apply `change` to the stored history and write the result with `annotations`, unless
    both are as stored; computed again on what is stored when another writer came first.
    `known` is the ConfigMap as the caller just listed it (None: it does not exist), which
    spares the first read. Returns what is stored."""
    for attempt in range(WRITE_ATTEMPTS):
        if attempt == 0 and not isinstance(known, Unknown):
            history, version = _decoded(known)
            stored_annotations = dict(
                ((known or {}).get("metadata") or {}).get("annotations") or {}
            )
        else:
            found = await kube.find_named(CONFIG_MAP, box.name, namespace=box.namespace)
            history, version = _decoded(found)
            stored_annotations = dict(
                ((found or {}).get("metadata") or {}).get("annotations") or {}
            )
        changed = change(history)
        wanted = dict(annotations or {})
        if (
            changed == history
            and version is not None
            and wanted.items() <= stored_annotations.items()
        ):
            return history
        body = manifest(box, changed)
        if version is None:
            body["metadata"]["annotations"].update(wanted)
            if await kube.create(body):
                return changed
            continue  # created by another writer meanwhile: change what it stored
        metadata: dict[str, Any] = {"resourceVersion": version}
        if wanted:
            metadata["annotations"] = wanted
        patch = {"metadata": metadata, "data": body["data"]}
        try:
            stored = await kube.patch(CONFIG_MAP, box.name, patch, namespace=box.namespace)
        except KubeApiError as err:
            if err.status == 409:
                continue
            raise
        if stored is not None:
            return changed
    raise ConflictError(
        f"ConfigMap {box.namespace}/{box.name} changed under {WRITE_ATTEMPTS} attempts to write it"
    )


def _decoded(found: Mapping[str, Any] | None) -> tuple[History, str | None]:
    if found is None:
        return History(), None
    return decode(found.get("data")), str(found["metadata"].get("resourceVersion", ""))


async def record(
    kube: KubeApi,
    notice: Notice,
    *,
    recipients: Sequence[str],
    now: datetime.datetime,
    box: Box | None = None,
) -> History:
    """Keep `notice` in the tenant's history with a pending mail to each of `recipients` (the
    tenant's `spec.contacts`). Idempotent: a notice of the same id is kept once and mailed once.
    `box` defaults to the tenant namespace's ConfigMap; the purge passes `purged_box(...)`."""
    box = box or tenant_box(notice.tenant, service_code=notice.service_code)
    return await record_all(kube, [notice], recipients=recipients, now=now, box=box)


async def record_all(
    kube: KubeApi,
    notices: Sequence[Notice],
    *,
    recipients: Sequence[str],
    now: datetime.datetime,
    box: Box,
    annotations: Mapping[str, str] | None = None,
    known: Mapping[str, Any] | Unknown | None = UNKNOWN,
) -> History:
    """Keep every one of `notices` in `box`, and set `annotations` on it, in one write (none
    when all are stored already); `known` as for `update`."""

    added: list[Notice] = []

    def change(history: History) -> History:
        added.clear()  # computed again on what is stored when another writer came first
        for notice in notices:
            if history.find(notice.id) is None:
                added.append(notice)
            history = add(history, notice, recipients, now=now)
        return history

    stored = await update(kube, box, change, annotations=annotations, known=known)
    for notice in added:
        logger.info(
            "Recorded %s notice %s of SecureWebGateway %s in ConfigMap %s/%s (%d recipient(s))",
            notice.kind,
            notice.id,
            notice.tenant,
            box.namespace,
            box.name,
            len(recipients),
        )
    return stored


async def notice_time(
    kube: KubeApi, *, clock: Callable[[], datetime.datetime]
) -> datetime.datetime:
    """The API server's clock when it answers, else `clock()` (the operator's)."""
    try:
        return await kube.server_time()
    except KubeApiError as err:
        logger.warning("Failed to read the API server's clock for a notice: %s", err)
        return clock()
