"""The judge and report steps of the reconcile (`reconcile.loop`), and what the steps pass along:
`Inputs` (step 1) and `Applied` (step 5). `judge_status` is pure; `report` and the `report_*`
of the reconciles that stop early write the status, the Events and the mirror, each only when
it changed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from swg_operator import metrics
from swg_operator.api import (
    KIND,
    CancellationStatus,
    ComputedSizing,
    SecureWebGatewaySpec,
    SecureWebGatewayStatus,
)
from swg_operator.catalogue import Catalogue
from swg_operator.naming import (
    Component,
    inspection_ca_certificate_name,
    inspection_ca_secret_name,
    service_name,
)
from swg_operator.quantities import format_bytes
from swg_operator.reconcile.access_cert import AccessCertificate
from swg_operator.reconcile.actions import announce, mirror_unobserved, notify, write_status
from swg_operator.reconcile.context import Context, Outcome
from swg_operator.reconcile.lifecycle import Deadline, cancellation, format_time, tenant_lifecycle
from swg_operator.reconcile.notices import reconcile_notices
from swg_operator.reconcile.ownership import Verdict
from swg_operator.reconcile.plan import ObjectKey, Plan, key_of
from swg_operator.reconcile.secrets import InspectionCa, announce_ca_expiry
from swg_operator.reconcile.status import (
    CaExpiry,
    Facts,
    Unresolved,
    compute_status,
    read_status,
)
from swg_operator.reconcile.storage import log_volume_claim
from swg_operator.render import Lifecycle, TenantManifests
from swg_operator.render.resources import quota_hard

logger = logging.getLogger("swg_operator.reconcile")


@dataclass
class Inputs:
    """Everything a reconcile starts from (step 1)."""

    body: Mapping[str, Any]
    name: str
    namespace: str
    lifecycle: Lifecycle
    previous: SecureWebGatewayStatus | None
    spec: SecureWebGatewaySpec | None = None
    catalogue: Catalogue | None = None
    platform_signatures: Mapping[str, str] | None = None
    problems: tuple[str, ...] = ()
    problem_reason: str = "InvalidSpec"
    ownership: Verdict | None = None
    deadline: Deadline | None = None
    cancellation: CancellationStatus | None = None
    observed: list[dict[str, Any]] = field(default_factory=list)
    mirror: dict[str, Any] | None = None
    legacy_check: bool = False

    @property
    def generation(self) -> int:
        return int(self.body["metadata"].get("generation", 0))

    @property
    def uid(self) -> str:
        return str(self.body["metadata"].get("uid") or "")


@dataclass
class Applied:
    """What `apply_plan` left (step 5)."""

    stored: dict[ObjectKey, dict[str, Any]]
    ca: InspectionCa
    in_namespace: bool  # the tenant namespace is there to notify and mirror into
    created_namespace: bool = False  # made by this reconcile: it holds nothing else yet
    expiry: CaExpiry | None = None  # the HTTPS-inspection CA in use (`check_references`)
    # The TLS listener's generated certificate, its Secret created by now when it was pending.
    listener: AccessCertificate = field(default_factory=AccessCertificate)


def computed_sizing(
    manifests: TenantManifests, current: Sequence[Mapping[str, Any]] = ()
) -> ComputedSizing:
    """The sizing as rendered: replicas and quota from the render's sizing plan (the rendered
    objects use them as they are), the log volume as its claim requests it: the stored claim
    (an existing claim keeps its size) or else the rendered one (`logs.storage.size` wins over
    the model's)."""
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


def judge_status(
    inputs: Inputs,
    manifests: TenantManifests | None,
    desired: Sequence[dict[str, Any]],
    plan: Plan,
    applied: Applied,
    unresolved: tuple[Unresolved, ...],
    ctx: Context,
) -> SecureWebGatewayStatus:
    """The status from what was rendered and what now exists (pure)."""
    pruned = set(plan.prune)
    observed_keys = {key_of(o) for o in inputs.observed}
    current = [applied.stored.get(key_of(o), o) for o in inputs.observed if key_of(o) not in pruned]
    current += [obj for key, obj in applied.stored.items() if key not in observed_keys]
    active = inputs.lifecycle is not Lifecycle.CANCELLED
    endpoint = f"{service_name(Component.PROXY)}.{inputs.namespace}.svc:{ctx.settings.proxy_port}"
    facts = Facts(
        generation=inputs.generation,
        mode=inputs.lifecycle,
        unresolved=unresolved,
        desired=tuple(desired),
        digests=plan.digests,
        current=tuple(current),
        antivirus_enabled=inputs.spec.antivirus.enabled if inputs.spec is not None else False,
        namespace=inputs.namespace,
        proxy_endpoint=endpoint if active else None,
        sizing=computed_sizing(manifests, current) if manifests is not None else None,
        cancellation=inputs.cancellation,
        inspection_ca_expiry=applied.expiry if active else None,
    )
    return compute_status(facts, previous=inputs.previous, now=format_time(ctx.clock()))


async def report(
    inputs: Inputs, plan: Plan, applied: Applied, status: SecureWebGatewayStatus, ctx: Context
) -> None:
    """The change notices, the status (only when it changed), the CA expiry warning."""
    body, namespace = inputs.body, inputs.namespace
    where = namespace if applied.in_namespace else None
    # Same generation as last time: nobody changed the spec, so any write repairs drift.
    previous = inputs.previous
    drift = previous is not None and previous.observed_generation == inputs.generation
    await announce(ctx.kube, body, plan, drift=drift, namespace=where)
    if applied.ca.created:
        await _announce_new_ca(ctx, body, namespace=namespace, where=where)
    if applied.in_namespace:  # before the status: a failure here is retried with its cause
        await reconcile_notices(
            ctx,
            body,
            spec=inputs.spec,
            plan=plan,
            previous=previous,
            status=status,
            cancelled=inputs.lifecycle is Lifecycle.CANCELLED,
            new_namespace=applied.created_namespace,
        )
    written = await write_status(ctx, body, status)
    await announce_ca_expiry(ctx.kube, body, previous=previous, status=status, namespace=where)
    if written and (previous is None or previous.phase != status.phase):
        logger.info("Moved %s %s to phase %s", KIND, inputs.name, status.phase)


async def _announce_new_ca(
    ctx: Context, body: Mapping[str, Any], *, namespace: str, where: str | None
) -> None:
    """The change notice of a new HTTPS-inspection CA (clients must trust its certificate)."""
    message = (
        f"Created Secret {namespace}/{inspection_ca_secret_name()} with a new HTTPS-inspection "
        f"CA; its certificate is published in ConfigMap {namespace}/"
        f"{inspection_ca_certificate_name()} (key ca.crt) for the clients to trust"
    )
    metrics.CHILD_CHANGES.labels(action="created").inc()
    logger.info("Created for %s %s: %s", KIND, body["metadata"]["name"], message)
    await notify(ctx.kube, body, reason="Created", message=message, namespace=where)


async def report_not_owned(inputs: Inputs, ctx: Context) -> Outcome:
    """The tenant's namespace is reserved or not the operator's to manage: `Stalled`, naming
    it; nothing in it is read, written or announced."""
    assert inputs.ownership is not None
    logger.warning("Stalled %s %s: %s", KIND, inputs.name, inputs.ownership.message)
    metrics.RECONCILE_ERRORS.labels(kind="not_owned").inc()
    facts = Facts(
        generation=inputs.generation,
        mode=inputs.lifecycle,
        unresolved=(Unresolved(str(inputs.ownership.state), inputs.ownership.message),),
        cancellation=inputs.cancellation,
    )
    status = compute_status(facts, previous=inputs.previous, now=format_time(ctx.clock()))
    await write_status(ctx, inputs.body, status)
    return Outcome(status, "not_owned", 0, inputs.deadline)


async def report_invalid(inputs: Inputs, ctx: Context) -> Outcome:
    """A spec the operator cannot honour: `Stalled`, naming the fields; nothing applied."""
    logger.warning(
        "Stalled %s %s: the spec cannot be honoured: %s",
        KIND,
        inputs.name,
        "; ".join(inputs.problems),
    )
    metrics.RECONCILE_ERRORS.labels(kind="invalid_spec").inc()
    previous = inputs.previous
    facts = Facts(
        generation=inputs.generation,
        mode=inputs.lifecycle,
        spec_problems=inputs.problems,
        spec_problem_reason=inputs.problem_reason,
        namespace=previous.namespace if previous else None,
        proxy_endpoint=previous.proxy_endpoint if previous else None,
    )
    status = compute_status(facts, previous=previous, now=format_time(ctx.clock()))
    await write_status(ctx, inputs.body, status)
    mirrored = await mirror_unobserved(ctx, inputs.body, status, spec=inputs.spec)
    return Outcome(status, "invalid_spec", mirrored)


async def report_bug(body: Mapping[str, Any], *, ctx: Context, error: str) -> None:
    previous = read_status(body.get("status"))
    mode = tenant_lifecycle(body)
    stamped = previous.cancellation if previous else None
    if mode is Lifecycle.CANCELLED:  # the purge deadline holds whatever failed
        _, stamped = cancellation(body, stamped)
    facts = Facts(
        generation=int(body["metadata"].get("generation", 0)),
        mode=mode,
        error=error[:1000],
        namespace=previous.namespace if previous else None,
        proxy_endpoint=previous.proxy_endpoint if previous else None,
        cancellation=stamped,
    )
    status = compute_status(facts, previous=previous, now=format_time(ctx.clock()))
    try:
        await write_status(ctx, body, status)
        metrics.record_phase(body["metadata"]["name"], status.phase)
        await mirror_unobserved(ctx, body, status, spec=None)
    except Exception as exc:  # the original error is what matters; this one is only logged
        logger.warning(
            "Failed to write the Degraded status of %s %s: %r", KIND, body["metadata"]["name"], exc
        )
