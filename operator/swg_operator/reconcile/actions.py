"""The reconcile's and the purge's dealings with the API server, each one a named action: read
the platform's inputs, observe a tenant's objects, execute a plan, notify (Events), write the
status, mirror it into the tenant namespace.

Reads come from the watch cache when the context has one (the running operator), so a
reconcile of a tenant whose objects are as desired asks the API server nothing; without it
(tests, tools) they are LISTs by the ownership labels.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

from swg_operator import metrics
from swg_operator.api import KIND, OperatorSettings, SecureWebGatewaySpec, SecureWebGatewayStatus
from swg_operator.catalogue import CATEGORY_LABEL, Catalogue, catalogue_from_configmaps
from swg_operator.kube import OWNED_KINDS, KubeApi, KubeApiError, kind_of
from swg_operator.kube.api import EventType
from swg_operator.kube.kinds import CONFIG_MAP, NAMESPACE, TENANT
from swg_operator.labels import selector_string
from swg_operator.naming import tenant_label_value, tenant_namespace
from swg_operator.reconcile.admins import mirror_plan, notice_subject, observe_mirror
from swg_operator.reconcile.context import Context, TransientError, guard
from swg_operator.reconcile.lifecycle import handled_purge_days
from swg_operator.reconcile.ownership import judge
from swg_operator.reconcile.plan import ObjectKey, Plan, applied_version, key_of
from swg_operator.reconcile.status import status_changed, status_patch, summarise

logger = logging.getLogger("swg_operator.reconcile")


async def load_catalogue(ctx: Context) -> Catalogue:
    """The platform's URL catalogue: the labelled ConfigMaps of the operator namespace (from
    the cache, parsed again only once they changed)."""
    if ctx.cache is not None:
        return ctx.cache.derived("catalogue", _catalogue)
    items = await guard(
        ctx.kube.list_labelled(
            CONFIG_MAP, selector=CATEGORY_LABEL, namespace=ctx.settings.operator_namespace
        )
    )
    return catalogue_from_configmaps(items)


def _catalogue(config_maps: Sequence[Mapping[str, Any]]) -> Catalogue:
    return catalogue_from_configmaps([o for o in config_maps if CATEGORY_LABEL in _labels(o)])


async def load_platform_signatures(ctx: Context) -> Mapping[str, str] | None:
    """The platform's ClamAV signature files when `antivirus.signatureSource` is `configMap`:
    the data of `antivirus.signatureConfigMap` in the operator namespace. None when that source
    is not in use, or when the ConfigMap is missing or being deleted (the renderer then reports
    `SignaturesUnavailable` for tenants with anti-virus on)."""
    settings: OperatorSettings = ctx.settings
    if settings.antivirus.signature_source != "configMap":
        return None
    name = settings.antivirus.signature_config_map

    def signatures(config_maps: Sequence[Mapping[str, Any]]) -> Mapping[str, str] | None:
        return _signature_files(next((o for o in config_maps if _named(o, name)), None))

    if ctx.cache is not None:
        return ctx.cache.derived(f"signatures/{name}", signatures)
    found = await guard(
        ctx.kube.find_named(CONFIG_MAP, name, namespace=settings.operator_namespace)
    )
    return _signature_files(found)


def _named(obj: Mapping[str, Any], name: str) -> bool:
    return bool((obj.get("metadata") or {}).get("name") == name)


def _signature_files(found: Mapping[str, Any] | None) -> Mapping[str, str] | None:
    if found is None or found.get("metadata", {}).get("deletionTimestamp"):
        return None
    return MappingProxyType(
        {str(key): str(value) for key, value in (found.get("data") or {}).items()}
    )


def _labels(obj: Mapping[str, Any]) -> Mapping[str, str]:
    return (obj.get("metadata") or {}).get("labels") or {}


async def observe(ctx: Context, tenant: str, namespaces: Sequence[str]) -> list[dict[str, Any]]:
    """Every object labelled as the tenant's: its Namespace, and each owned kind in
    `namespaces` (nothing for namespaces that do not exist: nothing can be in them)."""
    if ctx.cache is not None:
        found = ctx.cache.children(tenant_label_value(tenant))
        existing = {o["metadata"]["name"] for o in found if o.get("kind") == NAMESPACE.kind}
        wanted = set(namespaces) & existing
        return [
            o
            for o in found
            if o.get("kind") == NAMESPACE.kind or o["metadata"].get("namespace") in wanted
        ]
    selector = selector_string(tenant)
    found = await guard(ctx.kube.list_labelled(NAMESPACE, selector=selector))
    existing = {obj["metadata"]["name"] for obj in found}
    for namespace in namespaces:
        if namespace not in existing:
            continue
        for kind in OWNED_KINDS:
            if kind.namespaced:
                found += await guard(
                    ctx.kube.list_labelled(kind, selector=selector, namespace=namespace)
                )
    return found


async def read_namespace(ctx: Context, tenant: str, *, new: bool = False) -> dict[str, Any] | None:
    """The tenant's Namespace as it is, whoever made it: from the cache when it is there
    (labelled as the tenant's), else asked by name (a namespace someone else made is never in
    the cache, and must be found to be left alone). For a `new` tenant (never reconciled) the
    cache's answer is taken: its namespace is created with a POST, which a namespace someone
    else made refuses (`NameTakenError`), and then it is read."""
    namespace = tenant_namespace(tenant)
    if ctx.cache is not None:
        for obj in ctx.cache.children(tenant_label_value(tenant), kind=NAMESPACE.kind):
            if obj["metadata"]["name"] == namespace:
                return obj
        if new:
            return None
    return await guard(ctx.kube.get(NAMESPACE, namespace))


class NameTakenError(TransientError):
    """An object created with a POST (`execute`'s `create_only`) exists already."""

    def __init__(self, key: ObjectKey) -> None:
        super().__init__(f"{key} appeared while the operator was creating it")
        self.key = key


async def execute(
    ctx: Context,
    plan: Plan,
    *,
    create_only: frozenset[ObjectKey] = frozenset(),
    seen: Mapping[ObjectKey, Mapping[str, Any]] | None = None,
) -> dict[ObjectKey, dict[str, Any]]:
    """Apply then prune; return the applied objects as the API server stored them, and
    remember what was applied (`ctx.applied`, and the cache until the watch reports it). The
    objects of `create_only` (the tenant namespace the operator makes) are created with a POST,
    which is refused when the name is taken: a namespace made by someone else meanwhile is
    never written over. `seen` (the observed objects) tells the cache what was pruned."""
    stored: dict[ObjectKey, dict[str, Any]] = {}
    for obj in plan.apply:
        key = key_of(obj)
        if key in create_only:
            if not await guard(ctx.kube.create(obj)):
                raise NameTakenError(key)
            stored[key] = {**obj}  # its resourceVersion comes with the watch event
        else:
            stored[key] = await guard(ctx.kube.apply(obj))
            if ctx.cache is not None:
                ctx.cache.wrote(stored[key])
        ctx.applied[key] = applied_version(obj, stored[key])
    for key in plan.prune:
        kind = kind_of({"apiVersion": key.api_version, "kind": key.kind})
        await guard(ctx.kube.delete(kind, key.name, namespace=key.namespace))
        forget(ctx, key, (seen or {}).get(key))
    return stored


def forget(ctx: Context, key: ObjectKey, last_seen: Mapping[str, Any] | None) -> None:
    """An object the operator deleted: no longer applied, and gone from the cache's view."""
    ctx.applied.pop(key, None)
    if ctx.cache is not None and last_seen is not None:
        ctx.cache.deleted(last_seen)


async def notify(
    kube: KubeApi,
    body: Mapping[str, Any],
    *,
    reason: str,
    message: str,
    namespace: str | None,
    type_: EventType = "Normal",
) -> None:
    """Post an Event on the tenant and, with `namespace`, the same in the tenant namespace
    (about its status mirror, for the admins: `reconcile.admins`). A lost notice is logged,
    never raised: the change it reports is made."""
    subjects = [body, *([notice_subject(namespace)] if namespace else [])]
    for subject in subjects:
        try:
            await kube.post_event(regarding=subject, reason=reason, message=message, type_=type_)
        except KubeApiError as exc:
            where = subject["metadata"].get("namespace") or "default"
            logger.warning(
                "Failed to post the %s Event of %s %s in %s: %s",
                reason,
                KIND,
                body["metadata"]["name"],
                where,
                exc,
            )


async def announce(
    kube: KubeApi,
    body: Mapping[str, Any],
    plan: Plan,
    *,
    drift: bool,
    namespace: str | None = None,
) -> None:
    """Kubernetes Events on the tenant for every change (ISO/IEC 27017 12.1.2 change notice),
    and the same in the tenant `namespace` when given (for its admins). With `drift` (the spec
    did not change since the last reconcile), missing objects were restored and changed ones
    reverted."""
    name = body["metadata"]["name"]
    groups = (
        ("Restored" if drift else "Created", plan.created, "created"),
        ("Reverted" if drift else "Updated", plan.updated, "updated"),
        ("Pruned", plan.prune, "pruned"),
    )
    for reason, keys, action in groups:
        if not keys:
            continue
        metrics.CHILD_CHANGES.labels(action=action).inc(len(keys))
        if drift and reason in ("Restored", "Reverted"):
            for key in keys:
                metrics.DRIFT_REPAIRS.labels(kind=key.kind).inc()
        verb = {
            "Restored": "Restored (deleted by hand)",
            "Reverted": "Reverted (changed by hand)",
        }.get(reason, reason)
        message = f"{verb} {len(keys)} object(s): {summarise(keys)}"
        logger.info("%s for %s %s: %s", reason, KIND, name, message)
        await notify(kube, body, reason=reason, message=message, namespace=namespace)


async def write_status(
    ctx: Context, body: Mapping[str, Any], status: SecureWebGatewayStatus
) -> bool:
    """Patch the status subresource only when it differs from the stored one; remember the
    answer's resourceVersion (its watch event is the operator's own echo). The purge days
    the operator handled go with it (`reconcile.lifecycle.handled_purge_days`)."""
    status = status.model_copy(update={"purge_after_days": handled_purge_days(body)})
    stored = body.get("status") or {}
    if not status_changed(status, stored):
        return False
    name = body["metadata"]["name"]
    answer = await guard(ctx.kube.patch_status(TENANT, name, status_patch(status, stored)))
    version = ((answer or {}).get("metadata") or {}).get("resourceVersion")
    if version:
        ctx.status_versions[name] = str(version)
    return True


def _service_code(body: Mapping[str, Any], spec: SecureWebGatewaySpec | None) -> str:
    """The service code for the status mirror's labels; a spec that did not validate may
    still name one (label values are sanitised by `labels`)."""
    if spec is not None:
        return spec.service_code
    raw = (body.get("spec") or {}).get("serviceCode")
    return raw if isinstance(raw, str) else ""


async def mirror(
    ctx: Context,
    body: Mapping[str, Any],
    status: SecureWebGatewayStatus,
    *,
    spec: SecureWebGatewaySpec | None,
    observed: Mapping[str, Any] | None,
) -> int:
    """Apply the status mirror in the tenant namespace when it differs (see
    `reconcile.admins`); the number of writes (0 or 1). The namespace must exist."""
    plan = mirror_plan(
        body["metadata"]["name"],
        status,
        service_code=_service_code(body, spec),
        spec=spec,
        observed=observed,
        applied=ctx.applied,
    )
    await execute(ctx, plan)
    return plan.writes


async def mirror_unobserved(
    ctx: Context,
    body: Mapping[str, Any],
    status: SecureWebGatewayStatus,
    *,
    spec: SecureWebGatewaySpec | None,
) -> int:
    """`mirror` for the reconciles that observed nothing (an invalid spec, a bug); only into
    a namespace the operator manages for the tenant."""
    name = body["metadata"]["name"]
    namespace = tenant_namespace(name)
    if not judge(body, namespace, await read_namespace(ctx, name), ctx.settings).deletable:
        return 0
    if ctx.cache is not None:
        found = await observe(ctx, name, [namespace])
        ready = any(o.get("kind") == NAMESPACE.kind for o in found)
        observed = next((o for o in found if key_of(o) == key_of(notice_subject(namespace))), None)
    else:
        ready, observed = await guard(observe_mirror(ctx.kube, name, namespace))
    if not ready:
        return 0
    return await mirror(ctx, body, status, spec=spec, observed=observed)
