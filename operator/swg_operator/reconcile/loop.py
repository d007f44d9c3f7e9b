"""The one reconcile of a tenant: create, update, resume, drift and cancellation all call it.

It renders the whole desired state, observes what exists under the tenant's ownership labels,
applies the difference (server-side apply, one field manager), prunes what is no longer wanted,
posts an Event for every change, and writes the status only when it changed. Errors come in
three kinds (STYLE.md 8): a spec the operator cannot honour becomes `Stalled` and is not retried
until the spec changes; a transient API error (409, 429, 5xx, no answer) raises
`TransientError` for the caller to retry with backoff; anything else is a bug: logged loudly,
`Degraded`, re-raised. A write refused by a ResourceQuota (403 `exceeded quota`) is transient
too (`QuotaExceededError`); when it is the log claim, refused by a quota charged for a claim
that does not exist (a create killed mid-request), that quota is deleted first
(`_recover_claim_charge`).
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from swg_operator import __version__, metrics
from swg_operator.api import (
    KIND,
    CancellationStatus,
    ComputedSizing,
    OperatorSettings,
    SecureWebGatewaySpec,
    SecureWebGatewayStatus,
    SpecError,
    parse_spec,
)
from swg_operator.capacity import Capacity
from swg_operator.catalogue import (
    CATEGORY_LABEL,
    Catalogue,
    CatalogueError,
    catalogue_from_configmaps,
)
from swg_operator.kube import OWNED_KINDS, KubeApi, KubeApiError, kind_of
from swg_operator.kube.kinds import CONFIG_MAP, NAMESPACE, RESOURCE_QUOTA, TENANT
from swg_operator.labels import selector_string
from swg_operator.naming import (
    Component,
    inspection_ca_certificate_name,
    inspection_ca_secret_name,
    log_volume_claim_name,
    service_name,
    tenant_namespace,
)
from swg_operator.posix_regex import url_regex_problems
from swg_operator.quantities import format_bytes
from swg_operator.reconcile.admins import (
    legacy_reader_role,
    mirror_plan,
    namespace_ready,
    notify,
    observe_mirror,
    split_mirror,
)
from swg_operator.reconcile.lifecycle import (
    ClockMode,
    Deadline,
    format_time,
    legal_hold,
    purge_after_days,
    purge_deadline,
)
from swg_operator.reconcile.ownership import Ownership, Verdict, judge, stamp
from swg_operator.reconcile.plan import (
    ObjectKey,
    Plan,
    applied_version,
    key_of,
    plan_changes,
)
from swg_operator.reconcile.references import custom_signatures_problems
from swg_operator.reconcile.secrets import (
    InspectionCa,
    announce_ca_expiry,
    check_customer_ca,
    create_pending,
    settle_inspection_ca,
)
from swg_operator.reconcile.status import (
    Facts,
    Unresolved,
    compute_status,
    read_status,
    status_changed,
    status_patch,
    summarise,
)
from swg_operator.reconcile.storage import (
    exceeded_quota,
    leaked_claim_charge,
    log_storage_problems,
    log_volume_claim,
)
from swg_operator.render import (
    Lifecycle,
    RenderError,
    TenantManifests,
    generates_inspection_ca,
    render_tenant,
)
from swg_operator.render.resources import quota_hard
from swg_operator.sizing_io import load_capacity

logger = logging.getLogger("swg_operator.reconcile")


class TransientError(Exception):
    """The API server could not serve the reconcile now; retry with backoff."""


class QuotaExceededError(TransientError):
    """A write refused by a ResourceQuota (403 `exceeded quota`): the quota's usage may be
    recomputed by then (or, for the log claim, the charged quota deleted: see
    `_recover_claim_charge`); retry with backoff."""


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
    """What every reconcile needs; built once when the operator starts."""

    kube: KubeApi
    settings: OperatorSettings
    purge: PurgePolicy = PurgePolicy()
    capacity: Capacity = field(default_factory=load_capacity)
    clock: Callable[[], datetime.datetime] = utcnow
    version: str = __version__
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    # Per object: (digest applied, resourceVersion answered); see `plan_changes`.
    applied: dict[ObjectKey, tuple[str, str]] = field(default_factory=dict)
    # Tenants whose namespace was searched for the admins' Role of older versions.
    legacy_checked: set[str] = field(default_factory=set)

    def lock(self, tenant: str) -> asyncio.Lock:
        """One reconcile per tenant at a time, whichever handler asked for it."""
        return self._locks.setdefault(tenant, asyncio.Lock())


@dataclass(frozen=True)
class Outcome:
    """What a reconcile did, for the handlers and the tests."""

    tenant: str
    status: SecureWebGatewayStatus
    result: str  # ok, invalid_spec
    writes: int  # objects applied or pruned
    status_written: bool
    manifests: TenantManifests | None = None
    deadline: Deadline | None = None


def _lifecycle(body: Mapping[str, Any]) -> Lifecycle:
    if body.get("metadata", {}).get("deletionTimestamp"):
        return Lifecycle.CANCELLED
    if body.get("spec", {}).get("suspended"):
        return Lifecycle.SUSPENDED
    return Lifecycle.ACTIVE


def computed_sizing(
    manifests: TenantManifests, current: Sequence[Mapping[str, Any]] = ()
) -> ComputedSizing:
    """The sizing as applied: replicas and quota from the sizing plan (the rendered objects
    use them as they are), the log volume as its claim requests it: the stored claim (an
    existing claim keeps its size) or else the rendered one (`logs.storage.size` wins over the
    model's)."""
    sizing = manifests.sizing
    hard = quota_hard(sizing.quota)
    claim = log_volume_claim(current, manifests.namespace) or log_volume_claim(
        manifests.objects, manifests.namespace
    )
    requested = ((claim or {}).get("spec") or {}).get("resources", {}).get("requests", {})
    log_storage = str(requested.get("storage") or format_bytes(sizing.log_volume))
    return ComputedSizing(
        proxy_replicas=sizing.proxy.replicas,
        antivirus_replicas=sizing.antivirus.replicas if sizing.antivirus is not None else 0,
        quota_cpu=hard.get("limits.cpu", hard.get("requests.cpu", "")),
        quota_memory=hard.get("limits.memory", hard.get("requests.memory", "")),
        log_storage=log_storage,
    )


async def load_catalogue(kube: KubeApi, settings: OperatorSettings) -> Catalogue:
    items = await kube.list_labelled(
        kind_of({"apiVersion": "v1", "kind": "ConfigMap"}),
        selector=CATEGORY_LABEL,
        namespace=settings.operator_namespace,
    )
    return catalogue_from_configmaps(items)


async def load_platform_signatures(
    kube: KubeApi, settings: OperatorSettings
) -> dict[str, str] | None:
    """The platform's ClamAV signature files when `antivirus.signatureSource` is `configMap`:
    the data of `antivirus.signatureConfigMap` in the operator namespace. None when that source
    is not in use, or when the ConfigMap is missing or being deleted (the renderer then reports
    `SignaturesUnavailable` for tenants with anti-virus on)."""
    if settings.antivirus.signature_source != "configMap":
        return None
    found = await kube.find_named(
        CONFIG_MAP,
        settings.antivirus.signature_config_map,
        namespace=settings.operator_namespace,
    )
    if found is None or found.get("metadata", {}).get("deletionTimestamp"):
        return None
    return {str(key): str(value) for key, value in (found.get("data") or {}).items()}


async def observe(kube: KubeApi, tenant: str, namespaces: Sequence[str]) -> list[dict[str, Any]]:
    """Every object labelled as the tenant's: its Namespace, and each owned kind in
    `namespaces` (skipped for namespaces that do not exist: nothing can be in them)."""
    selector = selector_string(tenant)
    found = await kube.list_labelled(NAMESPACE, selector=selector)
    existing = {obj["metadata"]["name"] for obj in found}
    for namespace in namespaces:
        if namespace not in existing:
            continue
        for kind in OWNED_KINDS:
            if kind.namespaced:
                found += await kube.list_labelled(kind, selector=selector, namespace=namespace)
    return found


async def check_references(
    kube: KubeApi, spec: SecureWebGatewaySpec, *, namespace: str
) -> tuple[Unresolved, ...]:
    """The objects the spec refers to in the tenant namespace and the customer provides, but
    the CA Secret (`reconcile.secrets.check_customer_ca`): the custom signatures ConfigMap
    (found by name with a list)."""
    problems: tuple[Unresolved, ...] = ()
    signatures = spec.antivirus.custom_signatures
    if spec.antivirus.enabled and signatures is not None:
        found = await kube.find_named(CONFIG_MAP, signatures.name, namespace=namespace)
        problems += custom_signatures_problems(spec, found, namespace=namespace)
    return problems


async def _guard(call: Awaitable[Any]) -> Any:
    """Turn transient API errors into `TransientError`; let the others through."""
    try:
        return await call
    except KubeApiError as exc:
        if exc.transient:
            raise TransientError(str(exc)) from exc
        if exceeded_quota(exc):
            raise QuotaExceededError(str(exc)) from exc
        raise


async def execute(
    kube: KubeApi,
    plan: Plan,
    applied: dict[ObjectKey, tuple[str, str]],
    *,
    create_only: frozenset[ObjectKey] = frozenset(),
) -> dict[ObjectKey, dict[str, Any]]:
    """Apply then prune; return the applied objects as the API server stored them, and
    remember in `applied` what was applied. The objects of `create_only` (the tenant namespace
    the operator makes) are created with a POST, which is refused when the name is taken: a
    namespace made by someone else meanwhile is never written over."""
    stored: dict[ObjectKey, dict[str, Any]] = {}
    for obj in plan.apply:
        key = key_of(obj)
        if key in create_only:
            kind = kind_of(obj)
            if not await _guard(kube.create(obj)):
                raise TransientError(f"{key} appeared while the operator was creating it")
            stored[key] = await _guard(kube.get(kind, key.name, namespace=key.namespace)) or {**obj}
        else:
            stored[key] = await _guard(kube.apply(obj))
        applied[key] = applied_version(obj, stored[key])
    for key in plan.prune:
        kind = kind_of({"apiVersion": key.api_version, "kind": key.kind})
        await _guard(kube.delete(kind, key.name, namespace=key.namespace))
        applied.pop(key, None)
    return stored


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
    kube: KubeApi, body: Mapping[str, Any], status: SecureWebGatewayStatus
) -> bool:
    """Patch the status subresource only when it differs from the stored one."""
    stored = body.get("status") or {}
    if not status_changed(status, stored):
        return False
    await _guard(kube.patch_status(TENANT, body["metadata"]["name"], status_patch(status, stored)))
    return True


async def _retract_certificate(
    ctx: Context, stored: dict[ObjectKey, dict[str, Any]], *, namespace: str
) -> dict[ObjectKey, dict[str, Any]]:
    """Delete the certificate ConfigMap applied in this reconcile: its CA never made it into
    the Secret (a Secret of that name was there already)."""
    name = inspection_ca_certificate_name()
    await _guard(ctx.kube.delete(CONFIG_MAP, name, namespace=namespace))
    key = ObjectKey(CONFIG_MAP.api_version, CONFIG_MAP.kind, namespace, name)
    ctx.applied.pop(key, None)
    return {k: v for k, v in stored.items() if k != key}


async def _announce_new_ca(
    kube: KubeApi, body: Mapping[str, Any], *, namespace: str, notify_namespace: bool
) -> None:
    """The change notice of a new HTTPS-inspection CA (clients must trust its certificate)."""
    tenant = body["metadata"]["name"]
    message = (
        f"Created Secret {namespace}/{inspection_ca_secret_name()} with a new HTTPS-inspection "
        f"CA; its certificate is published in ConfigMap {namespace}/"
        f"{inspection_ca_certificate_name()} (key ca.crt) for the clients to trust"
    )
    metrics.CHILD_CHANGES.labels(action="created").inc()
    logger.info("Created for %s %s: %s", KIND, tenant, message)
    where = namespace if notify_namespace else None
    await notify(kube, body, reason="Created", message=message, namespace=where)


def _service_code(body: Mapping[str, Any], spec: SecureWebGatewaySpec | None) -> str:
    """The service code for the status mirror's labels; a spec that did not validate may
    still name one (label values are sanitised by `labels`)."""
    if spec is not None:
        return spec.service_code
    raw = (body.get("spec") or {}).get("serviceCode")
    return raw if isinstance(raw, str) else ""


async def mirror_status(
    ctx: Context,
    body: Mapping[str, Any],
    status: SecureWebGatewayStatus,
    *,
    spec: SecureWebGatewaySpec | None,
    observed: Mapping[str, Any] | None,
) -> int:
    """Apply the status mirror in the tenant namespace when it differs (see
    `reconcile.admins`); the number of writes (0 or 1). The namespace must exist."""
    name = body["metadata"]["name"]
    plan = mirror_plan(
        name,
        status,
        service_code=_service_code(body, spec),
        observed=observed,
        applied=ctx.applied,
    )
    await execute(ctx.kube, plan, ctx.applied)
    return plan.writes


async def _mirror_observing(
    ctx: Context,
    body: Mapping[str, Any],
    status: SecureWebGatewayStatus,
    *,
    spec: SecureWebGatewaySpec | None,
) -> int:
    """`mirror_status` for the reconciles that observed nothing (an invalid spec, a bug); only
    into a namespace the operator manages for the tenant."""
    namespace = tenant_namespace(body["metadata"]["name"])
    found = await _guard(ctx.kube.get(NAMESPACE, namespace))
    if not judge(body, namespace, found, ctx.settings).deletable:
        return 0
    ready, observed = await _guard(observe_mirror(ctx.kube, body["metadata"]["name"], namespace))
    if not ready:
        return 0
    return await mirror_status(ctx, body, status, spec=spec, observed=observed)


async def _recover_claim_charge(ctx: Context, body: Mapping[str, Any], *, namespace: str) -> None:
    """A write was refused by a quota: when the tenant quota is charged for a log claim that
    does not exist (`reconcile.storage.leaked_claim_charge`), delete that quota, by name, and
    say so. The retry (the caller's backoff) creates the claim, then the quota again, which the
    quota controller counts from what exists at once, instead of waiting for its next full
    resync (minutes). Any other refusal is left to the retry."""
    quota = await _guard(leaked_claim_charge(ctx.kube, namespace))
    if quota is None:
        return
    name = quota["metadata"]["name"]
    await _guard(ctx.kube.delete(RESOURCE_QUOTA, name, namespace=namespace))
    ctx.applied.pop(key_of(quota), None)
    used = ((quota.get("status") or {}).get("used") or {}).get("persistentvolumeclaims")
    message = (
        f"Deleted ResourceQuota {namespace}/{name}: it counted {used} volume claim(s) used while "
        f"the log claim {log_volume_claim_name()} does not exist (a create interrupted after "
        "admission), so the claim was refused; the quota is made again right after the claim"
    )
    logger.warning("QuotaChargeRecovered for %s %s: %s", KIND, body["metadata"]["name"], message)
    metrics.CHILD_CHANGES.labels(action="pruned").inc()
    await notify(
        ctx.kube,
        body,
        reason="QuotaChargeRecovered",
        message=message,
        namespace=namespace,
        type_="Warning",
    )


def _proxy_endpoint(namespace: str, settings: OperatorSettings) -> str:
    return f"{service_name(Component.PROXY)}.{namespace}.svc:{settings.proxy_port}"


def _cancellation(
    body: Mapping[str, Any], previous: SecureWebGatewayStatus | None
) -> tuple[Deadline, CancellationStatus]:
    stamped = previous.cancellation if previous is not None else None
    # Raw reads (see reconcile.lifecycle): an invalid spec still holds and still waits.
    hold = legal_hold(body.get("spec"))
    deadline = purge_deadline(
        deletion_timestamp=body["metadata"]["deletionTimestamp"],
        purge_after_days=purge_after_days(body),
        stamped_purge_at=stamped.purge_at if stamped is not None else None,
    )
    status = CancellationStatus(
        cancelled_at=format_time(deadline.cancelled_at),
        purge_at=format_time(deadline.purge_at),
        legal_hold=hold,
        purged_at=stamped.purged_at if stamped is not None else None,
        receipt=stamped.receipt if stamped is not None else None,
    )
    return deadline, status


async def _not_owned(
    body: Mapping[str, Any],
    ownership: Verdict,
    *,
    ctx: Context,
    deadline: Deadline | None,
    cancellation: CancellationStatus | None,
) -> Outcome:
    """The tenant's namespace is reserved or not the operator's to manage: `Stalled`, naming
    it; nothing in it is read, written or announced."""
    name = body["metadata"]["name"]
    previous = read_status(body.get("status"))
    logger.warning("Stalled %s %s: %s", KIND, name, ownership.message)
    metrics.RECONCILE_ERRORS.labels(kind="not_owned").inc()
    facts = Facts(
        generation=int(body["metadata"].get("generation", 0)),
        mode=_lifecycle(body),
        unresolved=(Unresolved(str(ownership.state), ownership.message),),
        cancellation=cancellation,
    )
    status = compute_status(facts, previous=previous, now=format_time(ctx.clock()))
    written = await write_status(ctx.kube, body, status)
    return Outcome(name, status, "not_owned", 0, written, None, deadline)


async def reconcile(body: Mapping[str, Any], *, ctx: Context) -> Outcome:
    """Bring tenant `body` to its desired state; see the module docstring."""
    name = body["metadata"]["name"]
    started = asyncio.get_running_loop().time()
    result = "error"
    try:
        outcome = await _reconcile(body, ctx=ctx)
        result = outcome.result
        metrics.record_phase(name, outcome.status.phase)
        return outcome
    except TransientError:
        result = "transient"
        metrics.RECONCILE_ERRORS.labels(kind="transient").inc()
        raise
    except Exception as exc:
        metrics.RECONCILE_ERRORS.labels(kind="bug").inc()
        logger.exception("Failed to reconcile %s %s: %r", KIND, name, exc)
        await _report_bug(body, ctx=ctx, error=f"{type(exc).__name__}: {exc}")
        raise
    finally:
        metrics.RECONCILES.labels(result=result).inc()
        metrics.RECONCILE_SECONDS.labels(result=result).observe(
            asyncio.get_running_loop().time() - started
        )


async def _report_bug(body: Mapping[str, Any], *, ctx: Context, error: str) -> None:
    previous = read_status(body.get("status"))
    mode = _lifecycle(body)
    cancellation = previous.cancellation if previous else None
    if mode is Lifecycle.CANCELLED:  # the purge deadline holds whatever failed
        _, cancellation = _cancellation(body, previous)
    facts = Facts(
        generation=int(body["metadata"].get("generation", 0)),
        mode=mode,
        error=error[:1000],
        namespace=previous.namespace if previous else None,
        proxy_endpoint=previous.proxy_endpoint if previous else None,
        cancellation=cancellation,
    )
    status = compute_status(facts, previous=previous, now=format_time(ctx.clock()))
    try:
        await write_status(ctx.kube, body, status)
        metrics.record_phase(body["metadata"]["name"], status.phase)
        await _mirror_observing(ctx, body, status, spec=None)
    except Exception as exc:  # the original error is what matters; this one is only logged
        logger.warning(
            "Failed to write the Degraded status of %s %s: %r", KIND, body["metadata"]["name"], exc
        )


async def _reconcile(body: Mapping[str, Any], *, ctx: Context) -> Outcome:
    meta = body["metadata"]
    name: str = meta["name"]
    generation = int(meta.get("generation", 0))
    previous = read_status(body.get("status"))
    lifecycle = _lifecycle(body)
    now = format_time(ctx.clock())
    namespace = tenant_namespace(name)

    spec: SecureWebGatewaySpec | None = None
    problems: tuple[str, ...] = ()
    problem_reason = "InvalidSpec"
    manifests: TenantManifests | None = None
    catalogue: Catalogue | None = None
    platform_signatures: dict[str, str] | None = None

    def render(certificate: str | None = None) -> TenantManifests:
        assert spec is not None
        assert catalogue is not None
        return render_tenant(
            name,
            spec,
            catalogue=catalogue,
            settings=ctx.settings,
            capacity=ctx.capacity,
            lifecycle=lifecycle,
            inspection_ca_certificate=certificate,
            platform_signatures=platform_signatures,
        )

    try:
        spec = parse_spec(body.get("spec") or {})
        if regex_problems := url_regex_problems(spec):
            raise SpecError(regex_problems)
        catalogue = await _guard(load_catalogue(ctx.kube, ctx.settings))
        platform_signatures = await _guard(load_platform_signatures(ctx.kube, ctx.settings))
        manifests = render()
    except SpecError as exc:
        problems = exc.problems
    except RenderError as exc:
        problems, problem_reason = exc.problems, exc.reason
    except CatalogueError as exc:
        problems = (f"spec.urlFiltering: the platform's URL catalogue is unusable: {exc}",)

    deadline: Deadline | None = None
    cancellation = previous.cancellation if previous else None
    if lifecycle is Lifecycle.CANCELLED:
        deadline, cancellation = _cancellation(body, previous)

    ownership = judge(
        body, namespace, await _guard(ctx.kube.get(NAMESPACE, namespace)), ctx.settings
    )
    if not ownership.manageable:
        return await _not_owned(
            body, ownership, ctx=ctx, deadline=deadline, cancellation=cancellation
        )

    if problems and lifecycle is not Lifecycle.CANCELLED:
        logger.warning(
            "Stalled %s %s: the spec cannot be honoured: %s", KIND, name, "; ".join(problems)
        )
        metrics.RECONCILE_ERRORS.labels(kind="invalid_spec").inc()
        facts = Facts(
            generation=generation,
            mode=lifecycle,
            spec_problems=problems,
            spec_problem_reason=problem_reason,
            namespace=previous.namespace if previous else None,
            proxy_endpoint=previous.proxy_endpoint if previous else None,
        )
        status = compute_status(facts, previous=previous, now=now)
        written = await write_status(ctx.kube, body, status)
        mirrored = await _mirror_observing(ctx, body, status, spec=spec)
        return Outcome(name, status, "invalid_spec", mirrored, written)

    # A cancelled tenant whose spec no longer renders still stops its traffic: everything but
    # the retained objects (Namespace, log store volume, published CA certificate) is pruned.
    uid = str(meta.get("uid") or "")
    desired = stamp(manifests.objects, namespace, uid) if manifests is not None else ()
    namespaces = sorted(
        {
            namespace,
            *(o["metadata"].get("namespace") for o in desired if o["metadata"].get("namespace")),
        }
    )
    observed, mirror = split_mirror(await _guard(observe(ctx.kube, name, namespaces)), namespace)
    legacy_check = name not in ctx.legacy_checked and namespace_ready(observed, namespace)
    if legacy_check:  # pruned with the rest
        observed += await _guard(legacy_reader_role(ctx.kube, name, namespace))
    ca = InspectionCa()
    if spec is not None and manifests is not None and generates_inspection_ca(spec):
        ca = await _guard(
            settle_inspection_ca(
                ctx.kube,
                tenant=name,
                spec=spec,
                namespace=namespace,
                observed=observed,
                now=ctx.clock(),
                create=lifecycle is not Lifecycle.CANCELLED,
            )
        )
        if ca.certificate is not None:
            manifests = render(ca.certificate)
            desired = stamp(manifests.objects, namespace, uid)
    plan = plan_changes(desired, observed, applied=ctx.applied)
    create_only = frozenset(
        key
        for key in plan.created
        if ownership.state is Ownership.ABSENT and key.kind == "Namespace" and key.name == namespace
    )
    try:
        stored = await execute(ctx.kube, plan, ctx.applied, create_only=create_only)
    except QuotaExceededError:
        await _recover_claim_charge(ctx, body, namespace=namespace)
        raise
    if (
        ownership.state is Ownership.LEGACY
        and key_of({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
        in stored
    ):
        message = (
            f"Adopted namespace {namespace}, made for this tenant by an earlier version (its "
            "labels, the tenant's status and its creation time say so): stamped with the "
            "tenant's UID"
        )
        logger.info("Adopted for %s %s: %s", KIND, name, message)
        await notify(ctx.kube, body, reason="Adopted", message=message, namespace=None)
    if legacy_check:
        ctx.legacy_checked.add(name)
    if ca.pending is not None:  # the namespace exists now
        ca = await _guard(create_pending(ctx.kube, ca, namespace=namespace))
        if ca.retract:
            stored = await _retract_certificate(ctx, stored, namespace=namespace)
    # Same generation as last time: nobody changed the spec, so any write repairs drift.
    drift = previous is not None and previous.observed_generation == generation
    in_namespace = namespace_ready([*observed, *stored.values()], namespace)
    await announce(ctx.kube, body, plan, drift=drift, namespace=namespace if in_namespace else None)
    if ca.created:
        await _announce_new_ca(ctx.kube, body, namespace=namespace, notify_namespace=in_namespace)
    unresolved = ca.unresolved
    if spec is not None and lifecycle is Lifecycle.ACTIVE:
        own = await _guard(check_customer_ca(ctx.kube, spec, namespace=namespace, now=ctx.clock()))
        ca = InspectionCa(expiry=ca.expiry or own.expiry)
        unresolved += own.unresolved
        unresolved += await _guard(check_references(ctx.kube, spec, namespace=namespace))
    if spec is not None:
        claims = [*observed, *stored.values()]
        unresolved += await _guard(
            log_storage_problems(ctx.kube, spec, claims, namespace=namespace)
        )
    if unresolved:
        logger.warning("Stalled %s %s: %s", KIND, name, "; ".join(u.message for u in unresolved))

    pruned = set(plan.prune)
    current = [stored.get(key_of(o), o) for o in observed if key_of(o) not in pruned]
    current += [obj for key, obj in stored.items() if key not in {key_of(o) for o in observed}]
    facts = Facts(
        generation=generation,
        mode=lifecycle,
        unresolved=unresolved,
        desired=tuple(desired),
        current=tuple(current),
        antivirus_enabled=spec.antivirus.enabled if spec is not None else False,
        namespace=namespace,
        proxy_endpoint=_proxy_endpoint(namespace, ctx.settings)
        if lifecycle is not Lifecycle.CANCELLED
        else None,
        sizing=computed_sizing(manifests, current) if manifests is not None else None,
        cancellation=cancellation,
        inspection_ca_expiry=ca.expiry if lifecycle is not Lifecycle.CANCELLED else None,
    )
    status = compute_status(facts, previous=previous, now=now)
    written = await write_status(ctx.kube, body, status)
    where = namespace if in_namespace else None
    await announce_ca_expiry(ctx.kube, body, previous=previous, status=status, namespace=where)
    if written and (previous is None or previous.phase != status.phase):
        logger.info("Moved %s %s to phase %s", KIND, name, status.phase)
    mirrored = 0
    if in_namespace:
        mirrored = await mirror_status(ctx, body, status, spec=spec, observed=mirror)
    writes = plan.writes + mirrored
    return Outcome(name, status, "ok", writes, written, manifests, deadline)
