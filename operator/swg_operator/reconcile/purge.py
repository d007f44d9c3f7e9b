"""Cancellation and purge of a tenant (docs/operator.md, ISO/IEC 27017 CLD 8.1.5).

Deleting a `SecureWebGateway` is the customer's cancellation. The finalizer `swg.dev/purge` keeps
the resource while this module: stops traffic at once (the CANCELLED render, through the one
reconcile), stamps `cancelledAt`/`purgeAt` into status, waits (no busy loop: the caller sleeps
until the next check) until the purge is due by the API server's clock and no legal hold is set,
then deletes the tenant's namespace, with everything in it, when the operator created it for this
tenant (`reconcile.ownership`: a namespace it did not create is left as it is), writes a purge
receipt that outlives the resource, and only then lets the finalizer go.

A cancellation reconcile that fails, whatever the reason (a refusal no retry gets past, a bug),
never holds back a purge that is due: the deadline is judged from the resource itself, stamped
into status when the failed reconcile could not, and the purge goes ahead (deleting the
namespace stops the traffic the reconcile could not stop). Before the deadline the failure is
raised, and the handler retries the reconcile.

Crash safety: `phase: Purging` is written before the first deletion and the receipt (with the
inventory) before the namespace goes, so a restart in the middle continues the purge instead of
re-creating objects, and the receipt's inventory is the union of what every attempt saw.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from swg_operator import metrics
from swg_operator.api import KIND, Phase, SecureWebGatewayStatus
from swg_operator.kube import OWNED_KINDS, KubeApi, KubeApiError
from swg_operator.kube.kinds import CONFIG_MAP, NAMESPACE, TENANT
from swg_operator.labels import MANAGED_BY, MANAGED_BY_KEY, selector_string
from swg_operator.naming import label_value, tenant_label_value, tenant_namespace
from swg_operator.receipts import sign_receipt
from swg_operator.reconcile.actions import notify, write_status
from swg_operator.reconcile.context import Context, TransientError, guard
from swg_operator.reconcile.lifecycle import (
    ClockMode,
    Deadline,
    DueCheck,
    cancellation,
    check_due,
    format_time,
    legal_hold,
    tenant_lifecycle,
)
from swg_operator.reconcile.loop import reconcile
from swg_operator.reconcile.notices import cancellation_notice, carry_over, purge_notice
from swg_operator.reconcile.ownership import Ownership, judge
from swg_operator.reconcile.plan import key_of
from swg_operator.reconcile.status import Facts, compute_status, read_status
from swg_operator.reconcile.volumes import NotYet as NotYet  # the purge's signal to wait
from swg_operator.reconcile.volumes import (
    claimed_volumes,
    reclaim_by_deletion,
    volume_entry,
    volume_left,
)

logger = logging.getLogger("swg_operator.purge")

RECEIPT_LABEL = "swg.dev/purge-receipt"
RECEIPT_TENANT_LABEL = "swg.dev/purged-tenant"
PURGE_PHASES = (Phase.PURGING, Phase.PURGED)


def receipt_name(body: Mapping[str, Any]) -> str:
    meta = body["metadata"]
    return f"purge-{meta['name']}-{str(meta.get('uid', ''))[:8]}".rstrip("-")


def receipt_entry(obj: Mapping[str, Any]) -> str:
    """How the receipt names an object: `Kind/namespace/name`, except the admins' RoleBindings,
    whose names derive from the admins' identities (e-mail addresses, and an unsalted digest of
    them): those are named by their UID, which says nothing about anyone. The receipt outlives
    the tenant; it must keep no personal data."""
    key = key_of(obj)
    if key.kind == "RoleBinding":
        uid = str(obj.get("metadata", {}).get("uid", "")) or "unknown"
        return str(key._replace(name=f"uid-{uid}"))
    return str(key)


def _impersonal(entry: str) -> bool:
    """False for inventory entries an earlier version wrote with an admin's binding name."""
    kind, _, rest = entry.partition("/")
    return kind != "RoleBinding" or rest.rpartition("/")[2].startswith("uid-")


_pending: set[str] = set()


def _set_pending(tenant: str, pending: bool) -> None:
    if pending:
        _pending.add(tenant)
    else:
        _pending.discard(tenant)
    metrics.PURGES_PENDING.set(len(_pending))


async def cancel_and_purge(body: Mapping[str, Any], *, ctx: Context) -> SecureWebGatewayStatus:
    """Drive a tenant marked for deletion: raises `NotYet` until the purge is complete; returns
    the final status when the finalizer may go."""
    name = body["metadata"]["name"]
    previous = read_status(body.get("status"))
    if previous is None or previous.phase not in PURGE_PHASES:
        try:
            outcome = await reconcile(body, ctx=ctx)  # stops traffic, stamps the deadline
        except Exception as exc:
            if not await _due_all_the_same(body, ctx=ctx, error=exc):
                raise
            return await purge(body, ctx=ctx)
        assert outcome.deadline is not None
        stamped = outcome.status.cancellation
        if stamped is not None:  # every pass: a no-op once recorded, never lost to a restart
            await cancellation_notice(
                ctx,
                body,
                stamped=stamped,
                namespace_exists=outcome.status.namespace is not None,
            )
        if stamped is not None and (previous is None or previous.cancellation is None):
            await _notify(
                body,
                "Cancelled",
                f"Cancelled at {stamped.cancelled_at}: traffic stopped, logs kept for export; "
                f"purge due at {stamped.purge_at}"
                + (" (postponed by a legal hold)" if stamped.legal_hold else ""),
                ctx=ctx,
                namespace=outcome.status.namespace,  # the admins keep their access until then
            )
        body = {
            **body,
            "status": outcome.status.model_dump(mode="json", by_alias=True, exclude_none=True),
        }
        check = await due_check(body, outcome.deadline, ctx=ctx)
        if not check.due:
            _set_pending(name, True)
            logger.info(
                "Deferred the purge of %s %s until %s (%s; local minus server clock: %s s)",
                KIND,
                name,
                outcome.status.cancellation and outcome.status.cancellation.purge_at,
                check.reason,
                "unknown" if check.skew_seconds is None else f"{check.skew_seconds:.0f}",
            )
            raise NotYet(check.wait_seconds, check.reason)
        logger.info(
            "Started the purge of %s %s (%s, clock mode %s)",
            KIND,
            name,
            check.reason,
            ctx.purge.clock,
        )
    return await purge(body, ctx=ctx)


async def _due_all_the_same(body: Mapping[str, Any], *, ctx: Context, error: Exception) -> bool:
    """The cancellation reconcile failed with `error`: True when the purge is due anyway (by
    the deadline read from the resource), once the deadline is stamped into status (the purge
    reads it there); False when it is not due yet (the failure is then raised and retried)."""
    name = body["metadata"]["name"]
    before = read_status(body.get("status"))
    deadline, stamped = cancellation(body, before.cancellation if before else None)
    check = await due_check(body, deadline, ctx=ctx)
    if not check.due:
        return False
    logger.warning(
        "Started the purge of %s %s although its cancellation reconcile failed (%s: %s): the "
        "purge is due (%s) and deleting the namespace stops its traffic",
        KIND,
        name,
        type(error).__name__,
        error,
        check.reason,
    )
    current = await guard(ctx.kube.get(TENANT, name))
    previous = read_status((current or {}).get("status"))
    if current is not None and (previous is None or previous.cancellation is None):
        facts = Facts(
            generation=int(current["metadata"].get("generation", 0)),
            mode=tenant_lifecycle(current),
            error=f"{type(error).__name__}: {error}"[:1000],
            cancellation=stamped,
        )
        status = compute_status(facts, previous=previous, now=format_time(ctx.clock()))
        await write_status(ctx, current, status)
        await cancellation_notice(
            ctx,
            current,
            stamped=stamped,
            namespace_exists=True,
        )
        await _notify(
            current,
            "Cancelled",
            f"Cancelled at {stamped.cancelled_at}: purge due at {stamped.purge_at}",
            ctx=ctx,
        )
    return True


async def _notify(
    body: Mapping[str, Any],
    reason: str,
    message: str,
    *,
    ctx: Context,
    namespace: str | None = None,
) -> None:
    """An Event on the tenant, and in its `namespace` when given (see `reconcile.admins`)."""
    logger.info("%s %s %s: %s", reason, KIND, body["metadata"]["name"], message)
    await notify(ctx.kube, body, reason=reason, message=message, namespace=namespace)


async def due_check(body: Mapping[str, Any], deadline: Deadline, *, ctx: Context) -> DueCheck:
    try:
        server_now = await ctx.kube.server_time()
    except KubeApiError as exc:
        logger.warning("Failed to read the API server's clock: %s", exc)
        server_now = None
    check = check_due(
        deadline,
        local_now=ctx.clock(),
        server_now=server_now,
        mode=ctx.purge.clock,
        local_margin=ctx.purge.local_margin,
        legal_hold=legal_hold(body.get("spec")),
        max_wait=ctx.purge.max_wait,
    )
    if check.skew_seconds is not None:
        metrics.CLOCK_SKEW.set(check.skew_seconds)
    return check


async def purge(body: Mapping[str, Any], *, ctx: Context) -> SecureWebGatewayStatus:
    """Delete everything of the tenant, write the receipt, and return the `Purged` status."""
    name = body["metadata"]["name"]
    kube = ctx.kube
    # Read again just before deleting anything: a legal hold set since the handler was called
    # (or since the deadline was checked) must still stop the purge.
    current = await guard(kube.get(TENANT, name))
    if current is None:
        raise NotYet(5.0, f"{KIND} {name} could not be read again before the purge")
    if legal_hold(current.get("spec")):
        logger.info("Deferred the purge of %s %s: legal hold", KIND, name)
        raise NotYet(ctx.purge.max_wait, "LegalHold: the purge waits until the hold is lifted")
    body = current
    previous = read_status(body.get("status"))
    if previous is None or previous.cancellation is None:
        raise NotYet(1.0, "Waiting for the cancellation to be stamped into status")
    if previous.phase is not Phase.PURGING:
        purging = previous.model_copy(update={"phase": Phase.PURGING})
        await write_status(ctx, body, purging)
        body = {**body, "status": purging.model_dump(mode="json", by_alias=True, exclude_none=True)}
        previous = purging
    metrics.record_phase(name, Phase.PURGING)

    namespace = tenant_namespace(name)
    ns_found = await guard(kube.get(NAMESPACE, namespace))
    ownership = judge(body, namespace, ns_found, ctx.settings)
    found: list[dict[str, Any]] = []
    if ownership.deletable:
        assert ns_found is not None
        found = [ns_found, *await guard(_labelled_in(kube, name, namespace))]
        deleted = f"namespace {namespace} and everything in it"
    elif ownership.state is Ownership.ABSENT:
        deleted = f"namespace {namespace} and everything in it (gone before this attempt)"
    else:  # never the operator's: nothing of the tenant can be in it
        logger.warning("Left namespace %s alone in the purge of %s %s", namespace, KIND, name)
        deleted = (
            f"nothing: namespace {namespace} was not created for this tenant "
            f"({ownership.state}) and was left as it was"
        )
    volumes = await guard(claimed_volumes(kube, found, namespace))
    inventory = sorted({*(receipt_entry(obj) for obj in found), *map(volume_entry, volumes)})
    receipt = await _write_receipt(
        body, inventory=inventory, ctx=ctx, completed_at=None, deleted=deleted, volumes=volumes
    )
    # Every volume any attempt saw (the namespace, and with it the claim, may be gone by now).
    volumes = list(receipt["volumes"])
    # Their data must go with the claim whatever the storage class says (Retain keeps it).
    for volume in volumes:
        await guard(reclaim_by_deletion(kube, volume, namespace))

    if ownership.deletable:
        assert ns_found is not None
        if not ns_found["metadata"].get("deletionTimestamp"):
            # The notices not mailed yet outlive the namespace (in the operator's).
            wait = await carry_over(ctx, body)
            if wait is not None:
                raise NotYet(wait, "Waiting for a notice's mail in flight")
            await guard(kube.delete(NAMESPACE, namespace))
        if await guard(kube.get(NAMESPACE, namespace)) is not None:
            raise NotYet(5.0, f"Waiting for namespace {namespace} to go")
    for volume in volumes:
        pv = await guard(reclaim_by_deletion(kube, volume, namespace))
        if pv is not None:
            await volume_left(body, previous, pv, receipt, ctx=ctx)

    completed = format_time(await _server_or_local_time(ctx))
    receipt = await _write_receipt(
        body, inventory=inventory, ctx=ctx, completed_at=completed, deleted=deleted
    )
    message = (
        f"Purged every object of the tenant ({len(receipt['inventory'])} listed; deleted "
        f"{deleted}) at {completed}; receipt ConfigMap "
        f"{ctx.settings.operator_namespace}/{receipt_name(body)}; operator {ctx.version}"
    )
    # Before the finalizer goes: the purge notice (mailed with the signed receipt) is kept in
    # the operator's namespace; a failure here retries the purge, which gets this far again.
    await purge_notice(ctx, body, receipt_name=receipt_name(body), receipt=receipt["signed"])
    try:
        await kube.post_event(regarding=body, reason="Purged", message=message)
    except KubeApiError as exc:
        logger.warning("Failed to post the Purged Event of %s %s: %s", KIND, name, exc)
    assert previous.cancellation is not None
    final = previous.model_copy(
        update={
            "phase": Phase.PURGED,
            "cancellation": previous.cancellation.model_copy(
                update={"purged_at": completed, "receipt": receipt_name(body)}
            ),
        }
    )
    try:
        await write_status(ctx, body, final)
    except (KubeApiError, TransientError) as exc:  # the receipt is the record; status is a courtesy
        logger.warning("Failed to write the Purged status of %s %s: %s", KIND, name, exc)
    metrics.PURGES_DONE.inc()
    metrics.record_phase(name, None)
    _set_pending(name, False)
    logger.info("Purged %s %s: %s", KIND, name, message)
    return final


async def _server_or_local_time(ctx: Context) -> Any:
    if ctx.purge.clock is ClockMode.SERVER:
        try:
            return await ctx.kube.server_time()
        except KubeApiError:
            pass
    return ctx.clock()


async def _labelled_in(kube: KubeApi, tenant: str, namespace: str) -> list[dict[str, Any]]:
    """The tenant's labelled objects in its namespace (for the receipt's inventory)."""
    found: list[dict[str, Any]] = []
    for kind in OWNED_KINDS:
        if kind.namespaced:
            found += await kube.list_labelled(
                kind, selector=selector_string(tenant), namespace=namespace
            )
    return found


async def _write_receipt(
    body: Mapping[str, Any],
    *,
    inventory: list[str],
    ctx: Context,
    completed_at: str | None,
    deleted: str,
    volumes: list[str] | None = None,
) -> dict[str, Any]:
    """Create or update the receipt; its inventory only grows (a restart sees less)."""
    namespace = ctx.settings.operator_namespace
    name = receipt_name(body)
    existing = await guard(ctx.kube.get(CONFIG_MAP, name, namespace=namespace))
    data = dict((existing or {}).get("data") or {})
    before = [e for e in json.loads(data.get("inventory.json", "[]")) if _impersonal(e)]
    merged = sorted({*before, *inventory})
    all_volumes = sorted({*json.loads(data.get("volumes", "[]")), *(volumes or ())})
    status = read_status(body.get("status"))
    cancellation = status.cancellation if status is not None else None
    meta = body["metadata"]
    record = {
        "tenant": meta["name"],
        "tenantUID": str(meta.get("uid", "")),
        "serviceCode": str((body.get("spec") or {}).get("serviceCode", "")),
        "cancelledAt": cancellation.cancelled_at if cancellation else "",
        "purgeAt": cancellation.purge_at if cancellation else "",
        "startedAt": data.get("startedAt") or format_time(ctx.clock()),
        "completedAt": completed_at or "",
        "state": "Completed" if completed_at else "Purging",
        "operatorVersion": ctx.version,
        "clockMode": str(ctx.purge.clock),
        "deleted": deleted
        + "".join(f"; PersistentVolume {v} (reclaim policy Delete)" for v in all_volumes),
        "volumes": json.dumps(all_volumes),
        "inventory.json": json.dumps(merged, indent=1),
    }
    manifest = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {
                MANAGED_BY_KEY: MANAGED_BY,
                RECEIPT_LABEL: "true",
                RECEIPT_TENANT_LABEL: tenant_label_value(meta["name"]),
                "swg.dev/service-code": label_value(record["serviceCode"] or "none"),
            },
        },
        "data": record,
    }
    if ctx.receipt_key is not None:
        manifest["data"] = sign_receipt(record, ctx.receipt_key)
    await guard(ctx.kube.apply(manifest))
    return {**record, "inventory": merged, "volumes": all_volumes, "signed": manifest["data"]}
