"""reconcile.status: conditions, phase, observedGeneration and transition times from hand-made
observations; and reconcile.lifecycle: the purge deadline and its clocks."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from swg_operator.api import CancellationStatus, Phase
from swg_operator.reconcile.lifecycle import (
    ClockMode,
    check_due,
    format_time,
    parse_time,
    purge_deadline,
)
from swg_operator.reconcile.plan import with_digest
from swg_operator.reconcile.status import Facts, compute_status, status_changed, status_to_wire
from swg_operator.render import Lifecycle

NS = "swg-acme"
T0 = "2026-01-01T00:00:00Z"
T1 = "2026-01-01T00:05:00Z"
T2 = "2026-01-01T00:10:00Z"


def _o(api_version: str, kind: str, name: str, **body: Any) -> dict[str, Any]:
    return {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": name, "namespace": NS},
        **body,
    }


def desired(antivirus: bool = True) -> tuple[dict[str, Any], ...]:
    objects = [
        _o("v1", "ResourceQuota", "tenant-quota", spec={"hard": {"limits.cpu": "2"}}),
        _o("v1", "LimitRange", "tenant-limits", spec={"limits": []}),
        _o("networking.k8s.io/v1", "NetworkPolicy", "default-deny", spec={"podSelector": {}}),
        _o("apps/v1", "Deployment", "proxy", spec={"replicas": 2}),
        _o("apps/v1", "Deployment", "logstore", spec={"replicas": 1}),
    ]
    if antivirus:
        objects.append(_o("apps/v1", "Deployment", "antivirus", spec={"replicas": 1}))
    return tuple(objects)


def stored(objects: tuple[dict[str, Any], ...], *, available: bool) -> tuple[dict[str, Any], ...]:
    out = []
    for o in objects:
        s = with_digest(o)
        s["metadata"]["generation"] = 1
        if o["kind"] == "Deployment":
            n = o["spec"]["replicas"]
            s["status"] = {
                "observedGeneration": 1,
                "replicas": n,
                "updatedReplicas": n,
                "availableReplicas": n if available else 0,
                "conditions": [{"type": "Available", "status": "True" if available else "False"}],
            }
        out.append(s)
    return tuple(out)


def facts(*, generation: int = 1, available: bool = True, **over: Any) -> Facts:
    d = over.pop("desired", desired())
    base: dict[str, Any] = {
        "generation": generation,
        "mode": Lifecycle.ACTIVE,
        "desired": d,
        "current": stored(d, available=available),
        "namespace": NS,
        "proxy_endpoint": f"proxy.{NS}.svc:3128",
    }
    base.update(over)
    return Facts(**base)


def cond(status: Any, name: str) -> tuple[str, str]:
    c = next(c for c in status.conditions if c.type == name)
    return c.status, c.reason


def test_all_available_is_ready_with_every_condition_true() -> None:
    s = compute_status(facts(), previous=None, now=T0)
    assert s.phase is Phase.READY
    assert s.observed_generation == 1
    for name in (
        "Ready",
        "SpecValid",
        "Isolated",
        "QuotaApplied",
        "ProxyAvailable",
        "AntivirusAvailable",
        "LogStoreAvailable",
    ):
        assert cond(s, name)[0] == "True", name
    assert cond(s, "Reconciling")[0] == "False"
    assert cond(s, "Stalled")[0] == "False"
    assert all(c.observed_generation == 1 for c in s.conditions)


def test_rolling_out_is_provisioning_and_reconciling() -> None:
    s = compute_status(facts(available=False), previous=None, now=T0)
    assert s.phase is Phase.PROVISIONING
    assert cond(s, "Ready") == ("False", "Progressing")
    assert cond(s, "Reconciling")[0] == "True"
    assert cond(s, "ProxyAvailable") == ("False", "DeploymentUnavailable")


def test_transition_time_moves_only_when_the_status_flips() -> None:
    first = compute_status(facts(available=False), previous=None, now=T0)
    same = compute_status(facts(available=False), previous=first, now=T1)
    assert not status_changed(same, status_to_wire(first))
    ready = compute_status(facts(available=True), previous=same, now=T2)
    by_type = {c.type: c for c in ready.conditions}
    assert by_type["Ready"].last_transition_time == T2
    assert by_type["SpecValid"].last_transition_time == T0  # never flipped
    assert by_type["Isolated"].last_transition_time == T0


def test_lost_availability_after_ready_is_degraded() -> None:
    ready = compute_status(facts(), previous=None, now=T0)
    lost = compute_status(facts(available=False), previous=ready, now=T1)
    assert lost.phase is Phase.DEGRADED
    changed = compute_status(facts(generation=2, available=False), previous=ready, now=T1)
    assert changed.phase is Phase.PROVISIONING
    assert changed.observed_generation == 2


def test_invalid_spec_is_stalled_naming_the_field() -> None:
    problems = ("spec.sizing.endpoints: Input should be greater than or equal to 1",)
    s = compute_status(
        Facts(generation=3, mode=Lifecycle.ACTIVE, spec_problems=problems), previous=None, now=T0
    )
    assert cond(s, "Stalled") == ("True", "InvalidSpec")
    assert cond(s, "SpecValid") == ("False", "InvalidSpec")
    assert cond(s, "Reconciling")[0] == "False"
    stalled = next(c for c in s.conditions if c.type == "Stalled")
    assert "spec.sizing.endpoints" in stalled.message
    assert s.observed_generation == 3
    assert s.phase is Phase.DEGRADED


def test_a_missing_network_policy_is_not_isolated() -> None:
    d = desired()
    current = tuple(o for o in stored(d, available=True) if o["kind"] != "NetworkPolicy")
    s = compute_status(facts(current=current), previous=None, now=T0)
    assert cond(s, "Isolated") == ("False", "NetworkPoliciesMissing")
    assert cond(s, "Ready")[0] == "False"


def test_antivirus_disabled_does_not_block_ready() -> None:
    s = compute_status(
        facts(desired=desired(antivirus=False), antivirus_enabled=False), previous=None, now=T0
    )
    assert cond(s, "AntivirusAvailable") == ("False", "Disabled")
    assert s.phase is Phase.READY


def test_suspended_and_cancelled() -> None:
    s = compute_status(facts(mode=Lifecycle.SUSPENDED), previous=None, now=T0)
    assert s.phase is Phase.SUSPENDED
    assert cond(s, "Ready") == ("False", "Suspended")
    assert cond(s, "ProxyAvailable") == ("False", "Suspended")
    c = CancellationStatus(cancelled_at=T0, purge_at="2026-03-31T00:00:00Z")
    s = compute_status(facts(mode=Lifecycle.CANCELLED, cancellation=c), previous=None, now=T0)
    assert s.phase is Phase.CANCELLED
    assert s.cancellation == c
    assert cond(s, "ProxyAvailable") == ("False", "Cancelled")


def test_bug_is_degraded_and_stalled() -> None:
    s = compute_status(
        Facts(generation=1, mode=Lifecycle.ACTIVE, error="KeyError: 'x'"), previous=None, now=T0
    )
    assert s.phase is Phase.DEGRADED
    assert cond(s, "Stalled") == ("True", "InternalError")


# --- the purge deadline ---------------------------------------------------------------------------

DELETED = "2026-01-01T12:00:00Z"


def at(text: str) -> datetime.datetime:
    return parse_time(text)


def test_deadline_is_days_after_the_deletion_and_never_beyond_90() -> None:
    d = purge_deadline(deletion_timestamp=DELETED, purge_after_days=30)
    assert format_time(d.cancelled_at) == DELETED
    assert format_time(d.purge_at) == "2026-01-31T12:00:00Z"
    capped = purge_deadline(
        deletion_timestamp=DELETED, purge_after_days=30, stamped_purge_at="2027-01-01T00:00:00Z"
    )
    assert format_time(capped.purge_at) == "2026-04-01T12:00:00Z"  # 90 days
    kept = purge_deadline(
        deletion_timestamp=DELETED, purge_after_days=5, stamped_purge_at="2026-01-20T00:00:00Z"
    )
    assert format_time(kept.purge_at) == "2026-01-20T00:00:00Z"  # stamped on first sight, kept


def test_zero_days_is_due_at_once_by_the_server_clock() -> None:
    d = purge_deadline(deletion_timestamp=DELETED, purge_after_days=0)
    check = check_due(d, local_now=at(DELETED), server_now=at(DELETED))
    assert check.due


@pytest.mark.parametrize("skew_minutes", [-30, -5, 5, 30, 60 * 24 * 91])
def test_server_mode_ignores_the_local_clock_either_way(skew_minutes: int) -> None:
    d = purge_deadline(deletion_timestamp=DELETED, purge_after_days=90)
    server = d.purge_at - datetime.timedelta(seconds=30)
    local = server + datetime.timedelta(minutes=skew_minutes)
    check = check_due(d, local_now=local, server_now=server)
    assert not check.due
    assert 0 < check.wait_seconds <= 31
    assert check.skew_seconds == pytest.approx(skew_minutes * 60)
    assert check_due(d, local_now=local, server_now=d.purge_at).due


def test_server_mode_without_the_server_clock_never_purges() -> None:
    d = purge_deadline(deletion_timestamp=DELETED, purge_after_days=0)
    check = check_due(d, local_now=at("2030-01-01T00:00:00Z"), server_now=None)
    assert not check.due
    assert check.reason == "ServerTimeUnknown"


def test_local_mode_needs_the_margin_so_minutes_ahead_never_purge_early() -> None:
    d = purge_deadline(deletion_timestamp=DELETED, purge_after_days=90)
    margin = datetime.timedelta(minutes=10)
    ahead = d.purge_at + datetime.timedelta(minutes=9)  # clock 9 min ahead at the true deadline
    assert not check_due(
        d, local_now=ahead, server_now=None, mode=ClockMode.LOCAL, local_margin=margin
    ).due
    later = d.purge_at + datetime.timedelta(minutes=11)
    assert check_due(
        d, local_now=later, server_now=None, mode=ClockMode.LOCAL, local_margin=margin
    ).due


def test_legal_hold_postpones_and_waits_are_bounded() -> None:
    d = purge_deadline(deletion_timestamp=DELETED, purge_after_days=0)
    held = check_due(
        d, local_now=at(DELETED), server_now=at(DELETED), legal_hold=True, max_wait=3600
    )
    assert not held.due
    assert held.reason == "LegalHold"
    assert held.wait_seconds == 3600
    far = purge_deadline(deletion_timestamp=DELETED, purge_after_days=90)
    wait = check_due(far, local_now=at(DELETED), server_now=at(DELETED), max_wait=3600)
    assert wait.wait_seconds == 3600
