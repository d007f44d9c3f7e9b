"""A tenant's status from what was observed. Pure: `now` is passed in.

Conditions follow kstatus: `Ready`, `Reconciling` (working towards the desired state) and
`Stalled` (cannot progress without a human: an invalid spec, a referenced object missing, a bug),
plus domain conditions `SpecValid`, `Isolated`,
`QuotaApplied`, `ProxyAvailable`, `AntivirusAvailable` and `LogStoreAvailable` (logs are one of
the three services: `Ready` needs the log store running, and a claim that does not bind is
reported by name), and, with HTTPS inspection on, `InspectionCAExpiring` (a warning: True from
30 days before the CA's notAfter; it does not make the tenant not Ready, an expired CA does, as
an unresolved reference). A condition's `lastTransitionTime`
moves only when its status flips; the whole status is written only when it differs from the
stored one (`status_changed`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from swg_operator.api import (
    CancellationStatus,
    ComputedSizing,
    Condition,
    Phase,
    SecureWebGatewayStatus,
)
from swg_operator.naming import Component, log_volume_claim_name, workload_name
from swg_operator.reconcile.plan import ObjectKey, carries, key_of, manifest_digest
from swg_operator.render.context import Lifecycle


@dataclass(frozen=True)
class Unresolved:
    """An object the spec refers to that the operator found missing or unusable (the
    customer's CA Secret, custom signatures ConfigMap, ...): only a human can fix it."""

    reason: str  # CamelCase, e.g. CustomSignaturesNotFound
    message: str  # names the spec field


@dataclass(frozen=True)
class CaExpiry:
    """The HTTPS-inspection CA's validity as judged (`reconcile.ca_pair.certificate_expiry`)."""

    expiring: bool  # the condition InspectionCAExpiring: True within the warning or past it
    reason: str  # Valid, Expiring, Expired
    message: str  # names where the CA is and its notAfter
    not_after: str  # RFC 3339


INSPECTION_CA_EXPIRING: Final = "InspectionCAExpiring"


@dataclass(frozen=True)
class Facts:
    """Everything the status is computed from."""

    generation: int
    mode: Lifecycle
    spec_problems: tuple[str, ...] = ()  # non-empty: the spec cannot be honoured
    spec_problem_reason: str = "InvalidSpec"  # CamelCase reason of the Stalled condition
    unresolved: tuple[Unresolved, ...] = ()  # referenced objects missing or unusable
    error: str | None = None  # a bug hit during the reconcile
    desired: tuple[Mapping[str, Any], ...] = ()
    digests: Mapping[ObjectKey, str] = field(default_factory=dict)  # of `desired`, when known
    current: tuple[Mapping[str, Any], ...] = ()  # the tenant's objects as they are now
    antivirus_enabled: bool = True
    namespace: str | None = None
    proxy_endpoint: str | None = None
    sizing: ComputedSizing | None = None
    cancellation: CancellationStatus | None = None
    inspection_ca_expiry: CaExpiry | None = None  # None: no CA in use, or none readable
    purging: bool = False
    purged: bool = False


def _deployment_ready(desired: Mapping[str, Any], current: Mapping[str, Any] | None) -> bool:
    """A Deployment is ready when its rollout of the desired template is complete and as many
    replicas as wanted are available (kstatus' rules for Deployments)."""
    if current is None:
        return False
    want = int(desired.get("spec", {}).get("replicas", 1))
    status = current.get("status", {})
    generation = current.get("metadata", {}).get("generation", 0)
    if status.get("observedGeneration", -1) < generation:
        return False
    if want == 0:
        return True
    available = any(
        c.get("type") == "Available" and c.get("status") == "True"
        for c in status.get("conditions", [])
    )
    return (
        available
        and status.get("updatedReplicas", 0) >= want
        and status.get("availableReplicas", 0) >= want
        and status.get("replicas", 0) <= want
    )


DOMAIN_CONDITIONS: Final = (
    "Isolated",
    "QuotaApplied",
    "ProxyAvailable",
    "AntivirusAvailable",
    "LogStoreAvailable",
)
# Unresolved reasons about the log volume (reconcile.storage): they explain LogStoreAvailable.
LOG_STORAGE_REASONS: Final = frozenset({"StorageClassNotFound"})


@dataclass(frozen=True)
class _Verdict:
    status: bool | None  # None: Unknown
    reason: str
    message: str


def _verdicts(facts: Facts) -> dict[str, _Verdict]:
    out: dict[str, _Verdict] = {}
    if facts.spec_problems:
        out["SpecValid"] = _Verdict(
            False, facts.spec_problem_reason, "; ".join(facts.spec_problems)
        )
        for kind in DOMAIN_CONDITIONS:
            out[kind] = _Verdict(None, "InvalidSpec", "Not evaluated: the spec is invalid")
        return out
    out["SpecValid"] = _Verdict(True, "Valid", "The spec was accepted")
    current = {key_of(obj): obj for obj in facts.current}

    def present(kind: str) -> tuple[int, list[str]]:
        wanted = [obj for obj in facts.desired if obj.get("kind") == kind]
        missing = []
        for obj in wanted:
            key = key_of(obj)
            digest = facts.digests.get(key) or manifest_digest(obj)
            if not carries(obj, current.get(key), digest):
                missing.append(str(key))
        return len(wanted), missing

    count, missing = present("NetworkPolicy")
    if count == 0:
        out["Isolated"] = _Verdict(False, "NoNetworkPolicies", "No NetworkPolicy is desired")
    elif missing:
        out["Isolated"] = _Verdict(
            False, "NetworkPoliciesMissing", "Missing or changed: " + ", ".join(missing)
        )
    else:
        out["Isolated"] = _Verdict(
            True,
            "NetworkPoliciesApplied",
            f"{count} NetworkPolicies enforce default-deny and the declared clients",
        )
    quota_count, quota_missing = present("ResourceQuota")
    limit_count, limit_missing = present("LimitRange")
    if quota_missing or limit_missing or not quota_count:
        out["QuotaApplied"] = _Verdict(
            False, "QuotaMissing", "Missing or changed: " + ", ".join(quota_missing + limit_missing)
        )
    else:
        out["QuotaApplied"] = _Verdict(
            True,
            "QuotaApplied",
            f"ResourceQuota and {limit_count} LimitRange sized from the declared load",
        )

    for condition, component, enabled in (
        ("ProxyAvailable", Component.PROXY, True),
        ("AntivirusAvailable", Component.ANTIVIRUS, facts.antivirus_enabled),
    ):
        if facts.mode is Lifecycle.CANCELLED:
            out[condition] = _Verdict(
                False, "Cancelled", "The contract is cancelled: traffic is stopped"
            )
            continue
        if not enabled:
            out[condition] = _Verdict(
                False, "Disabled", "Anti-virus scanning is disabled in the spec"
            )
            continue
        if facts.mode is Lifecycle.SUSPENDED:
            out[condition] = _Verdict(
                False, "Suspended", "The gateway is suspended (scaled to zero)"
            )
            continue
        name = workload_name(component)
        desired = next(
            (
                o
                for o in facts.desired
                if o.get("kind") == "Deployment" and o["metadata"]["name"] == name
            ),
            None,
        )
        if desired is None:
            out[condition] = _Verdict(False, "NotRendered", f"No Deployment {name} is desired")
        elif _deployment_ready(desired, current.get(key_of(desired))):
            replicas = desired.get("spec", {}).get("replicas", 1)
            out[condition] = _Verdict(
                True, "DeploymentAvailable", f"Deployment {name}: {replicas} replicas available"
            )
        else:
            out[condition] = _Verdict(
                False,
                "DeploymentUnavailable",
                f"Deployment {name} is rolling out or not available yet",
            )
    out["LogStoreAvailable"] = _log_store_verdict(facts, current)
    return out


def _log_store_verdict(facts: Facts, current: Mapping[ObjectKey, Mapping[str, Any]]) -> _Verdict:
    """The log store runs in every lifecycle state (admins export logs until the purge): it
    is available when its Deployment is; otherwise its volume claim says why, by name."""
    name = workload_name(Component.LOGSTORE)
    desired = next(
        (
            o
            for o in facts.desired
            if o.get("kind") == "Deployment" and o["metadata"]["name"] == name
        ),
        None,
    )
    if desired is None:
        return _Verdict(False, "NotRendered", f"No Deployment {name} is desired")
    if _deployment_ready(desired, current.get(key_of(desired))):
        return _Verdict(True, "DeploymentAvailable", f"Deployment {name}: log store available")
    storage = [u for u in facts.unresolved if u.reason in LOG_STORAGE_REASONS]
    if storage:
        return _Verdict(False, storage[0].reason, storage[0].message)
    wanted = next(
        (
            o
            for o in facts.desired
            if o.get("kind") == "PersistentVolumeClaim"
            and o["metadata"]["name"] == log_volume_claim_name()
        ),
        None,
    )
    claim = current.get(key_of(wanted)) if wanted is not None else None
    if wanted is not None:
        where = (
            f"PersistentVolumeClaim {wanted['metadata'].get('namespace')}/{log_volume_claim_name()}"
        )
        phase = str(((claim or {}).get("status") or {}).get("phase") or "Pending")
        if claim is None:
            return _Verdict(False, "ClaimMissing", f"{where} is not created yet")
        if phase != "Bound":
            storage_class = (claim.get("spec") or {}).get("storageClassName")
            of = (
                f"StorageClass {storage_class}"
                if storage_class
                else "no StorageClass: the cluster has no default one; name one in "
                "spec.logs.storage.storageClassName or have the platform team mark a default"
            )
            return _Verdict(
                False,
                "ClaimLost" if phase == "Lost" else "ClaimPending",
                f"{where} is {phase} ({of}): the log store starts once a volume is bound to it",
            )
    return _Verdict(
        False, "DeploymentUnavailable", f"Deployment {name} is rolling out or not available yet"
    )


def _phase(facts: Facts, ready: bool, previous: SecureWebGatewayStatus | None) -> Phase:
    if facts.purged:
        return Phase.PURGED
    if facts.purging:
        return Phase.PURGING
    if facts.mode is Lifecycle.CANCELLED:
        return Phase.CANCELLED
    if facts.spec_problems or facts.error:
        return Phase.DEGRADED
    if facts.mode is Lifecycle.SUSPENDED:
        return Phase.SUSPENDED
    if facts.unresolved:
        return Phase.DEGRADED
    if ready:
        return Phase.READY
    settled = (
        previous is not None
        and previous.phase in (Phase.READY, Phase.DEGRADED)
        and previous.observed_generation == facts.generation
    )
    return Phase.DEGRADED if settled else Phase.PROVISIONING


def never_ready(previous: SecureWebGatewayStatus | None) -> bool:
    """Has the tenant of status `previous` certainly never been Ready? True for a first
    generation still `Provisioning`: once Ready, a tenant leaves Ready for `Degraded` while its
    generation stays (`_phase`), and only a new generation makes it `Provisioning` again.
    False means perhaps."""
    return (
        previous is not None
        and previous.phase is Phase.PROVISIONING
        and previous.observed_generation == 1
    )


def compute_status(
    facts: Facts, *, previous: SecureWebGatewayStatus | None, now: str
) -> SecureWebGatewayStatus:
    """The status for `facts`; conditions keep their `lastTransitionTime` unless they flipped."""
    verdicts = _verdicts(facts)
    domain_ok = all(
        v.status is True
        for name, v in verdicts.items()
        if not (name == "AntivirusAvailable" and v.reason == "Disabled")
    )
    ready = (
        facts.mode is Lifecycle.ACTIVE and not facts.error and not facts.unresolved and domain_ok
    )
    if facts.error:
        verdicts["Ready"] = _Verdict(False, "InternalError", facts.error)
        verdicts["Stalled"] = _Verdict(True, "InternalError", facts.error)
        verdicts["Reconciling"] = _Verdict(False, "InternalError", "Retrying with backoff")
    elif facts.spec_problems:
        message = "; ".join(facts.spec_problems)
        reason = facts.spec_problem_reason
        verdicts["Ready"] = _Verdict(False, reason, message)
        verdicts["Stalled"] = _Verdict(True, reason, message)
        verdicts["Reconciling"] = _Verdict(False, reason, "Waiting for a corrected spec")
    elif facts.mode is Lifecycle.CANCELLED:
        state = (
            "purged" if facts.purged else "purging" if facts.purging else "waiting for the purge"
        )
        verdicts["Ready"] = _Verdict(
            False, "Cancelled", f"The contract is cancelled; logs kept for export, {state}"
        )
        verdicts["Stalled"] = _Verdict(False, "Cancelled", "")
        verdicts["Reconciling"] = _Verdict(
            facts.purging, "Purging" if facts.purging else "Cancelled", ""
        )
    elif facts.mode is Lifecycle.SUSPENDED:
        settled = domain_ok or all(
            v.status is True or v.reason in ("Suspended", "Disabled") for v in verdicts.values()
        )
        verdicts["Ready"] = _Verdict(
            False, "Suspended", "The gateway is suspended (spec.suspended)"
        )
        verdicts["Stalled"] = _Verdict(False, "Suspended", "")
        verdicts["Reconciling"] = _Verdict(
            not settled, "Suspending" if not settled else "Suspended", ""
        )
    elif facts.unresolved:
        # The objects are applied, but a pod cannot start (or restart) without what the spec
        # refers to: the customer must create or fix it.
        reason = facts.unresolved[0].reason
        message = "; ".join(u.message for u in facts.unresolved)
        verdicts["Ready"] = _Verdict(False, reason, message)
        verdicts["Stalled"] = _Verdict(True, reason, message)
        verdicts["Reconciling"] = _Verdict(
            False, reason, "Waiting for the referenced objects; checked again on every reconcile"
        )
    elif ready:
        verdicts["Ready"] = _Verdict(
            True, "Ready", "Every object of the tenant is applied and available"
        )
        verdicts["Stalled"] = _Verdict(False, "Ready", "")
        verdicts["Reconciling"] = _Verdict(False, "Ready", "")
    else:
        waiting = [
            f"{n}: {v.message}"
            for n, v in verdicts.items()
            if v.status is not True and v.reason != "Disabled"
        ]
        verdicts["Ready"] = _Verdict(False, "Progressing", "; ".join(waiting))
        verdicts["Stalled"] = _Verdict(False, "Progressing", "")
        verdicts["Reconciling"] = _Verdict(True, "Progressing", "; ".join(waiting))

    expiry = facts.inspection_ca_expiry
    if expiry is not None and not facts.spec_problems:
        verdicts[INSPECTION_CA_EXPIRING] = _Verdict(expiry.expiring, expiry.reason, expiry.message)
    old = {c.type: c for c in (previous.conditions if previous else ())}
    order = (
        "Ready",
        "Reconciling",
        "Stalled",
        "SpecValid",
        "Isolated",
        "QuotaApplied",
        "ProxyAvailable",
        "AntivirusAvailable",
        "LogStoreAvailable",
        INSPECTION_CA_EXPIRING,
    )
    conditions = []
    for name in order:
        if name not in verdicts:
            continue
        verdict = verdicts[name]
        value = "Unknown" if verdict.status is None else ("True" if verdict.status else "False")
        before = old.get(name)
        since = (
            before.last_transition_time if before is not None and before.status == value else now
        )
        conditions.append(
            Condition(
                type=name,
                status=value,
                reason=verdict.reason,
                message=verdict.message[:32768],
                last_transition_time=since,
                observed_generation=facts.generation,
            )
        )
    return SecureWebGatewayStatus(
        observed_generation=facts.generation,
        phase=_phase(facts, ready, previous),
        namespace=facts.namespace,
        proxy_endpoint=facts.proxy_endpoint,
        sizing=facts.sizing
        if facts.sizing is not None
        else (previous.sizing if previous else None),
        conditions=tuple(conditions),
        cancellation=facts.cancellation,
    )


def status_to_wire(status: SecureWebGatewayStatus) -> dict[str, Any]:
    return status.model_dump(mode="json", by_alias=True, exclude_none=True)


def read_status(raw: Mapping[str, Any] | None) -> SecureWebGatewayStatus | None:
    """The stored status, or None when there is none or it does not parse (then it is
    rewritten from scratch)."""
    if not raw:
        return None
    try:
        return SecureWebGatewayStatus.model_validate(dict(raw))
    except ValueError:
        return None


def status_changed(new: SecureWebGatewayStatus, stored: Mapping[str, Any] | None) -> bool:
    return status_to_wire(new) != dict(stored or {})


def status_patch(new: SecureWebGatewayStatus, stored: Mapping[str, Any] | None) -> dict[str, Any]:
    """A merge patch turning `stored` into `new` (fields that disappeared are set to null)."""
    wire = status_to_wire(new)
    patch: dict[str, Any] = dict(wire)
    for key in stored or {}:
        if key not in wire:
            patch[key] = None
    return patch


def summarise(keys: Sequence[object], limit: int = 12) -> str:
    """A short human list of object keys for an Event message."""
    names = [str(k) for k in keys]
    more = len(names) - limit
    return ", ".join(names[:limit]) + (f" and {more} more" if more > 0 else "")
