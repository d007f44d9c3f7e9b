"""The one reconcile of a tenant: create, update, resume, drift and cancellation all call it.

It reads as its steps, top to bottom (`_reconcile`):

0. admit: nothing is created for a tenant without the purge finalizer, and the tenant is read
   again just before its namespace is created (`not_to_create`): whatever exists of a tenant,
   its purge finds;
1. `read_inputs`: the spec, the platform's URL catalogue and signatures, whose the tenant
   namespace is, and the tenant's objects as observed (the watch cache in the running operator:
   no request for a tenant whose objects are as desired);
2. `settle_ca`, `settle_listener` (`reconcile.settle`): the generated HTTPS-inspection CA and
   TLS listener certificate, the only places that make Secrets (created in step 5 when the
   namespace is new);
3. `render`: the desired state, pure, once;
4. `plan_changes`: desired x observed, pure;
5. `apply_plan`: server-side apply and prune, the only writes to the tenant's objects;
6. `check_references` then `judge`: what only a human can fix, then the status, pure;
7. `report`: the status, its mirror in the tenant namespace and the Events, each only when it
   changed.

Errors (`reconcile.context`): a spec the operator cannot honour becomes `Stalled`; a transient
API error raises `TransientError` for the caller to retry; anything else is a bug, logged,
`Degraded` and re-raised. A log claim refused by a quota charged for a claim that does not exist
(a create killed mid-request) gets that quota deleted first (`recover_claim_charge`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from swg_operator import metrics
from swg_operator.api import FINALIZER, KIND, SecureWebGatewayStatus, SpecError, parse_spec
from swg_operator.catalogue import CatalogueError
from swg_operator.kube.kinds import CONFIG_MAP, NAMESPACE, RESOURCE_QUOTA, TENANT
from swg_operator.naming import (
    inspection_ca_certificate_name,
    log_volume_claim_name,
    tenant_namespace,
)
from swg_operator.posix_regex import url_regex_problems
from swg_operator.reconcile.access_cert import (
    AccessCertificate,
    check_customer_certificate,
    create_pending_certificate,
)
from swg_operator.reconcile.actions import (
    NameTakenError,
    execute,
    forget,
    load_catalogue,
    load_platform_signatures,
    mirror,
    notify,
    observe,
    read_namespace,
)
from swg_operator.reconcile.admins import legacy_reader_role, split_mirror
from swg_operator.reconcile.context import (
    Context,
    Outcome,
    PurgePolicy,
    QuotaExceededError,
    TransientError,
    guard,
)
from swg_operator.reconcile.directory_secrets import check_directory_secrets
from swg_operator.reconcile.lifecycle import cancellation, tenant_lifecycle
from swg_operator.reconcile.ownership import Ownership, judge, namespace_ready, stamp
from swg_operator.reconcile.plan import ObjectKey, Plan, key_of, plan_changes
from swg_operator.reconcile.references import custom_signatures_problems
from swg_operator.reconcile.region import region_problems
from swg_operator.reconcile.report import (
    Applied,
    Inputs,
    judge_status,
    report,
    report_bug,
    report_invalid,
    report_not_owned,
)
from swg_operator.reconcile.secrets import (
    InspectionCa,
    check_customer_ca,
    create_pending,
)
from swg_operator.reconcile.settle import secret_memory, settle_ca, settle_listener
from swg_operator.reconcile.status import Unresolved, read_status
from swg_operator.reconcile.storage import leaked_claim_charge, log_storage_problems
from swg_operator.render import (
    Lifecycle,
    RenderError,
    TenantManifests,
    render_tenant,
)

__all__ = ["Context", "Outcome", "PurgePolicy", "TransientError", "reconcile"]

logger = logging.getLogger("swg_operator.reconcile")


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
        await report_bug(body, ctx=ctx, error=f"{type(exc).__name__}: {exc}")
        raise
    finally:
        metrics.RECONCILES.labels(result=result).inc()
        metrics.RECONCILE_SECONDS.labels(result=result).observe(
            asyncio.get_running_loop().time() - started
        )


async def _reconcile(body: Mapping[str, Any], *, ctx: Context) -> Outcome:
    if not purge_assured(body):
        return waiting(body, "the purge finalizer is not on it yet")
    inputs = await read_inputs(body, ctx)
    assert inputs.ownership is not None
    if not inputs.ownership.manageable:
        return await report_not_owned(inputs, ctx)
    creates_namespace = inputs.ownership.state is Ownership.ABSENT
    if creates_namespace and inputs.lifecycle is not Lifecycle.CANCELLED:
        why = await not_to_create(inputs, ctx)
        if why is not None:
            return waiting(body, why)
    if inputs.problems and inputs.lifecycle is not Lifecycle.CANCELLED:
        return await report_invalid(inputs, ctx)
    await observe_children(inputs, ctx)
    ca = await settle_ca(inputs, ctx)
    listener = await settle_listener(inputs, ctx)
    manifests = render(inputs, ca, ctx, listener=listener)
    if inputs.problems and inputs.lifecycle is not Lifecycle.CANCELLED:
        return await report_invalid(inputs, ctx)
    # A cancelled tenant whose spec no longer renders still stops its traffic: everything but
    # the retained objects (Namespace, log store volume, published CA certificate) is pruned.
    # Cancelled before its namespace was made: nothing to keep for export, nothing to create.
    keep_nothing = creates_namespace and inputs.lifecycle is Lifecycle.CANCELLED
    desired = (
        stamp(manifests.objects, inputs.namespace, inputs.uid)
        if manifests and not keep_nothing
        else ()
    )
    plan = plan_changes(desired, inputs.observed, applied=ctx.applied)
    try:
        applied = await apply_plan(inputs, plan, ca, listener, ctx)
    except NameTakenError as taken:
        if taken.key.kind != NAMESPACE.kind:
            raise
        # Made by someone else (a new tenant's namespace is not looked up before): read it,
        # and say whose it is; nothing was written before it.
        found = await guard(ctx.kube.get(NAMESPACE, inputs.namespace))
        inputs.ownership = judge(body, inputs.namespace, found, ctx.settings)
        if not inputs.ownership.manageable:
            return await report_not_owned(inputs, ctx)
        raise
    unresolved = await check_references(inputs, applied, ctx)
    status = judge_status(inputs, manifests, desired, plan, applied, unresolved, ctx)
    await report(inputs, plan, applied, status, ctx)
    mirrored = 0
    if applied.in_namespace:
        mirrored = await mirror(ctx, body, status, spec=inputs.spec, observed=inputs.mirror)
    return Outcome(status, "ok", plan.writes + mirrored, inputs.deadline)


# --- 0. admit: nothing is created that the purge would not find --------------------------------


def purge_assured(body: Mapping[str, Any]) -> bool:
    """Is the purge finalizer on the tenant? Without it the API server would remove a deleted
    tenant at once and leave whatever was made for it behind, unpurged: kopf puts it on at first
    sight, and its event asks for the next reconcile."""
    return FINALIZER in (body["metadata"].get("finalizers") or ())


async def not_to_create(inputs: Inputs, ctx: Context) -> str | None:
    """Why the tenant's namespace must not be created from this copy of the tenant (None: it
    may be). Read again just before, as the purge reads it before deleting: the copy may be
    older than a deletion (the tenant gone, being deleted, or made again under a new UID)."""
    current = await guard(ctx.kube.get(TENANT, inputs.name))
    if current is None:
        return "it is gone"
    meta = current["metadata"]
    if meta.get("uid") != inputs.uid:
        return f"it was made again (UID {meta.get('uid')})"
    if meta.get("deletionTimestamp"):
        return "it is being deleted"
    if not purge_assured(current):
        return "the purge finalizer is not on it"
    return None


def waiting(body: Mapping[str, Any], why: str) -> Outcome:
    """Nothing read further, written or announced; the tenant's next event asks again."""
    logger.debug("Left %s %s as it is for now: %s", KIND, body["metadata"]["name"], why)
    previous = read_status(body.get("status")) or SecureWebGatewayStatus()
    return Outcome(previous, "waiting", 0)


# --- 1. read the inputs ------------------------------------------------------------------------


async def read_inputs(body: Mapping[str, Any], ctx: Context) -> Inputs:
    """The spec (parsed, or the problems that keep it from being honoured), the platform's
    catalogue and signatures, the purge deadline of a cancelled tenant, and whose the tenant
    namespace is."""
    name = body["metadata"]["name"]
    previous = read_status(body.get("status"))
    inputs = Inputs(
        body=body,
        name=name,
        namespace=tenant_namespace(name),
        lifecycle=tenant_lifecycle(body),
        previous=previous,
        cancellation=previous.cancellation if previous else None,
    )
    try:
        inputs.spec = parse_spec(body.get("spec") or {})
        if regex_problems := url_regex_problems(inputs.spec):
            raise SpecError(regex_problems)
        inputs.catalogue = await load_catalogue(ctx)
        inputs.platform_signatures = await load_platform_signatures(ctx)
    except SpecError as exc:
        inputs.problems = exc.problems
    except CatalogueError as exc:
        inputs.problems = (f"spec.urlFiltering: the platform's URL catalogue is unusable: {exc}",)
    if inputs.lifecycle is Lifecycle.CANCELLED:
        inputs.deadline, inputs.cancellation = cancellation(body, inputs.cancellation)
    new = previous is None and inputs.lifecycle is not Lifecycle.CANCELLED
    found = await read_namespace(ctx, name, new=new)
    inputs.ownership = judge(body, inputs.namespace, found, ctx.settings)
    return inputs


async def observe_children(inputs: Inputs, ctx: Context) -> None:
    """The tenant's objects as they are (the status mirror apart), and, once per tenant and
    process, the admins' Role of older versions (to be pruned with the rest)."""
    found = await observe(ctx, inputs.name, [inputs.namespace])
    inputs.observed, inputs.mirror = split_mirror(found, inputs.namespace)
    inputs.legacy_check = inputs.name not in ctx.legacy_checked and namespace_ready(
        inputs.observed, inputs.namespace
    )
    if inputs.legacy_check:
        inputs.observed += await guard(legacy_reader_role(ctx.kube, inputs.name, inputs.namespace))


# --- 3. render (2. settle the generated Secrets: `reconcile.settle`) ---------------------------


def render(
    inputs: Inputs, ca: InspectionCa, ctx: Context, *, listener: AccessCertificate
) -> TenantManifests | None:
    """The desired state (pure); a spec it cannot honour is recorded in `inputs.problems`."""
    if inputs.spec is None or inputs.catalogue is None or inputs.problems:
        return None
    try:
        return render_tenant(
            inputs.name,
            inputs.spec,
            catalogue=inputs.catalogue,
            settings=ctx.settings,
            capacity=ctx.capacity,
            lifecycle=inputs.lifecycle,
            inspection_ca_certificate=ca.certificate,
            platform_signatures=inputs.platform_signatures,
            access_certificate=listener.certificate,
        )
    except RenderError as exc:
        inputs.problems, inputs.problem_reason = exc.problems, exc.reason
        return None


# --- 5. apply ----------------------------------------------------------------------------------


async def apply_plan(
    inputs: Inputs, plan: Plan, ca: InspectionCa, listener: AccessCertificate, ctx: Context
) -> Applied:
    """Apply and prune; then adopt a namespace of an earlier version, and create the CA and
    listener certificate Secrets generated before their namespace existed (their certificates
    are published by now)."""
    assert inputs.ownership is not None
    namespace = inputs.namespace
    create_only = frozenset(
        key
        for key in plan.created
        if inputs.ownership.state is Ownership.ABSENT
        and key.kind == "Namespace"
        and key.name == namespace
    )
    seen = {key_of(o): o for o in inputs.observed}
    try:
        stored = await execute(ctx, plan, create_only=create_only, seen=seen)
    except QuotaExceededError:
        await recover_claim_charge(ctx, inputs.body, namespace=namespace)
        raise
    namespace_key = ObjectKey("v1", "Namespace", None, namespace)
    if inputs.ownership.state is Ownership.LEGACY and namespace_key in stored:
        message = (
            f"Adopted namespace {namespace}, made for this tenant by an earlier version (its "
            "labels, the tenant's status and its creation time say so): stamped with the "
            "tenant's UID"
        )
        logger.info("Adopted for %s %s: %s", KIND, inputs.name, message)
        await notify(ctx.kube, inputs.body, reason="Adopted", message=message, namespace=None)
    # A namespace this reconcile created holds no Role of an earlier version: nothing to look up.
    created_namespace = namespace_key in stored and inputs.ownership.state is Ownership.ABSENT
    if inputs.legacy_check or created_namespace:
        ctx.legacy_checked.add(inputs.name)
    if ca.pending is not None:  # the namespace exists now
        memory = secret_memory(inputs, ctx)
        ca = await guard(
            create_pending(ctx.kube, ca, namespace=namespace, memory=memory, now=ctx.clock())
        )
        if ca.retract:  # its CA never made it into the Secret (a Secret of that name was there)
            name = inspection_ca_certificate_name()
            await guard(ctx.kube.delete(CONFIG_MAP, name, namespace=namespace))
            key = ObjectKey(CONFIG_MAP.api_version, CONFIG_MAP.kind, namespace, name)
            forget(ctx, key, stored.pop(key, None))
    in_namespace = namespace_ready([*inputs.observed, *stored.values()], namespace)
    if listener.pending is not None and in_namespace:
        listener = await guard(create_pending_certificate(ctx.kube, listener))
    return Applied(
        stored=stored,
        ca=ca,
        in_namespace=in_namespace,
        created_namespace=created_namespace,
        listener=listener,
    )


async def recover_claim_charge(ctx: Context, body: Mapping[str, Any], *, namespace: str) -> None:
    """A write was refused by a quota: when the tenant quota is charged for a log claim that
    does not exist (`reconcile.storage.leaked_claim_charge`), delete that quota, by name, and
    say so. The retry (the caller's backoff) creates the claim, then the quota again, which the
    quota controller counts from what exists at once, instead of waiting for its next full
    resync (minutes). Any other refusal is left to the retry."""
    quota = await guard(leaked_claim_charge(ctx.kube, namespace))
    if quota is None:
        return
    name = quota["metadata"]["name"]
    await guard(ctx.kube.delete(RESOURCE_QUOTA, name, namespace=namespace))
    forget(ctx, key_of(quota), quota)
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


# --- 6. check the references, judge ------------------------------------------------------------


async def check_references(
    inputs: Inputs, applied: Applied, ctx: Context
) -> tuple[Unresolved, ...]:
    """What the spec refers to that only a human can fix: the customer's CA Secret, the
    directory bind Secret, the listener's certificate Secret, the custom signatures ConfigMap,
    a log claim that cannot bind. Also sets `applied.expiry`."""
    spec, namespace = inputs.spec, inputs.namespace
    unresolved = applied.ca.unresolved + applied.listener.unresolved
    applied.expiry = applied.ca.expiry
    if spec is not None and inputs.lifecycle is Lifecycle.ACTIVE:
        # The Secrets a spec names, each read only when not remembered (`secret_checks`).
        memory, now = secret_memory(inputs, ctx), ctx.clock()
        own = await guard(
            check_customer_ca(ctx.kube, spec, namespace=namespace, now=now, memory=memory)
        )
        applied.expiry = applied.ca.expiry or own.expiry
        unresolved += own.unresolved
        unresolved += await guard(
            check_directory_secrets(ctx.kube, spec, namespace=namespace, now=now, memory=memory)
        )
        unresolved += await guard(
            check_customer_certificate(ctx.kube, spec, namespace=namespace, now=now)
        )
        signatures = spec.antivirus.custom_signatures
        if spec.antivirus.enabled and signatures is not None:
            found = await guard(
                ctx.kube.find_named(CONFIG_MAP, signatures.name, namespace=namespace)
            )
            unresolved += custom_signatures_problems(spec, found, namespace=namespace)
    if spec is not None:
        claims = [*inputs.observed, *applied.stored.values()]
        unresolved += await guard(
            log_storage_problems(
                ctx.kube,
                spec,
                claims,
                namespace=namespace,
                now=ctx.clock(),
                classes=ctx.storage_classes,
            )
        )
        unresolved += await guard(region_problems(ctx.kube, spec, claims, namespace=namespace))
    if unresolved:
        logger.warning(
            "Stalled %s %s: %s", KIND, inputs.name, "; ".join(u.message for u in unresolved)
        )
    return unresolved
