"""Chaos: the operator SIGKILLed at random points, the API server paused, etcd restarted, while
tenants are created, changed and cancelled; afterwards every invariant must hold.

`test_chaos_converges_without_orphans_duplicates_or_early_purges` runs the scenario of
`bench.chaos.scenario` with at least 20 kills on the session's local control plane (it needs to
signal the API server and etcd, so it is skipped on an external cluster). The seed is random
and printed; `SWG_CHAOS_SEED=<seed>` replays a run. `make bench-chaos` runs a longer one.

The `test_check_*` tests need no cluster: each feeds one invariant a snapshot with one fault
and shows the check reports it, so a green chaos run means something.
"""

from __future__ import annotations

import copy
import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from bench.chaos import checks
from bench.chaos.checks import Expected, Snapshot
from bench.chaos.model import Options, Tenant
from bench.chaos.observe import renderer
from bench.chaos.scenario import Chaos, settled

from e2e.cluster import Cluster, ControlPlane, unique_name
from e2e.operator_process import forget_tenant, install_prerequisites, tenant_manifest
from swg_operator.naming import tenant_namespace

LOGS = Path(__file__).resolve().parents[1] / ".local" / "logs" / "e2e"
OPERATOR_NS = "swg-system"
KILLS = 20


@pytest.fixture
def chaos_plane(cluster: Cluster) -> ControlPlane:
    if not isinstance(cluster, ControlPlane):
        pytest.skip("chaos signals the API server and etcd: local control plane only")
    install_prerequisites(cluster, operator_namespace=OPERATOR_NS)
    return cluster


@pytest.mark.cluster
@pytest.mark.timeout(600)
def test_chaos_converges_without_orphans_duplicates_or_early_purges(
    chaos_plane: ControlPlane,
) -> None:
    seed = int(os.environ.get("SWG_CHAOS_SEED") or secrets.randbelow(2**31))
    print(f"chaos seed: {seed} (replay with SWG_CHAOS_SEED={seed})")
    opts = Options(
        seed=seed,
        kills=KILLS,
        operator_namespace=OPERATOR_NS,
        prefix=unique_name("chaos"),
    )
    chaos = Chaos(chaos_plane, opts, log_dir=LOGS)
    try:
        report = chaos.run()
    finally:
        for tenant in chaos.tenants:
            forget_tenant(chaos_plane, tenant.name)
    record = LOGS / f"chaos-{seed}.json"
    record.write_text(json.dumps(report.to_json(), indent=1))
    where = f"seed {seed}; report {record}; operator log {chaos.log_path}"
    assert report.kills >= KILLS, where
    assert {f["fault"] for f in report.faults} == {
        "API server paused (SIGSTOP)",
        "etcd restarted",
    }, where
    assert report.converge_seconds is not None, f"did not converge: {report.violations} ({where})"
    failed = {name: found for name, found in report.violations.items() if found}
    assert not failed, f"invariants violated ({where}): {json.dumps(failed, indent=1)}"
    # A quota charged for a claim that does not exist is recovered by the operator at once.
    leaks = report.quota_charge_leaks
    assert not leaks, f"quota charged for a claim that does not exist: {leaks} ({where})"


# --- each invariant can fail -------------------------------------------------------------------

RENDER = renderer(OPERATOR_NS)


def _tenant(name: str, *, days: int, deleted: bool = False, **spec: Any) -> Expected:
    body = tenant_manifest(name, cancellation={"purgeAfterDays": days}, **spec)
    return Expected(
        name=name,
        uid=f"uid-{name}",
        spec=dict(body["spec"]),
        purge_after_days=days,
        deleted=deleted,
    )


def _stamped(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The objects as the operator leaves them: with the digest it stamps."""
    from swg_operator.reconcile.plan import with_digest

    return [with_digest(o) for o in objects]


def _body(e: Expected, *, phase: str, generation: int = 1) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": e.name, "uid": e.uid, "generation": generation}
    status: dict[str, Any] = {
        "phase": phase,
        "observedGeneration": generation,
        "conditions": [
            {"type": "Ready", "status": "True" if phase == "Ready" else "False", "reason": phase}
        ],
    }
    if e.deleted:
        meta["deletionTimestamp"] = "2026-11-26T00:00:00Z"
        meta["finalizers"] = [checks.FINALIZER]
        status["cancellation"] = {
            "cancelledAt": "2026-11-26T00:00:00Z",
            "purgeAt": "2027-02-24T00:00:00Z",
        }
    return {"metadata": meta, "spec": dict(e.spec), "status": status}


def _receipt(e: Expected) -> dict[str, Any]:
    ns = tenant_namespace(e.name)
    return {
        "metadata": {"name": f"purge-{e.name}", "namespace": OPERATOR_NS},
        "data": {
            "tenant": e.name,
            "tenantUID": e.uid,
            "state": "Completed",
            "purgeAt": "2026-11-26T00:00:00Z",
            "completedAt": "2026-11-26T00:00:05Z",
            "inventory.json": json.dumps(
                [f"Namespace/{ns}", f"PersistentVolumeClaim/{ns}/logstore-data"]
            ),
        },
    }


ACTIVE = _tenant("t-active", days=90)
WAITING = _tenant("t-waiting", days=90, deleted=True)
PURGED = _tenant("t-purged", days=0, deleted=True)
EXPECTED = [ACTIVE, WAITING, PURGED]


def _healthy() -> Snapshot:
    return Snapshot(
        tenants={
            ACTIVE.name: _body(ACTIVE, phase="Ready"),
            WAITING.name: _body(WAITING, phase="Cancelled"),
        },
        objects=_stamped(RENDER(ACTIVE)) + _stamped(RENDER(WAITING)),
        receipts=[_receipt(PURGED)],
    )


def _violations(snapshot: Snapshot) -> dict[str, list[str]]:
    return checks.every_check(EXPECTED, snapshot, render=RENDER)


def _without(snapshot: Snapshot, kind: str, name: str, tenant: str) -> Snapshot:
    theirs = {id(o) for o in checks.objects_of(snapshot, tenant)}
    kept = [
        o
        for o in snapshot.objects
        if not (id(o) in theirs and o["kind"] == kind and o["metadata"]["name"] == name)
    ]
    return Snapshot(tenants=snapshot.tenants, objects=kept, receipts=snapshot.receipts)


def _with(snapshot: Snapshot, *extra: Mapping[str, Any]) -> Snapshot:
    return Snapshot(
        tenants=snapshot.tenants, objects=[*snapshot.objects, *extra], receipts=snapshot.receipts
    )


def _find(snapshot: Snapshot, kind: str, name: str, tenant: str) -> dict[str, Any]:
    for o in snapshot.objects:
        mine = checks.objects_of(Snapshot({}, [o]), tenant)
        if mine and o["kind"] == kind and o["metadata"]["name"] == name:
            return copy.deepcopy(dict(o))
    raise LookupError(f"{kind} {name} of {tenant}")


def test_check_a_healthy_snapshot_has_no_violation() -> None:
    assert _violations(_healthy()) == {name: [] for name in _violations(_healthy())}


def test_check_convergence_fails_on_a_tenant_not_ready() -> None:
    snap = _healthy()
    tenants = dict(snap.tenants)
    tenants[ACTIVE.name] = _body(ACTIVE, phase="Provisioning")
    found = checks.convergence(EXPECTED, Snapshot(tenants, snap.objects, snap.receipts))
    assert found
    assert "t-active: phase Provisioning" in found[0]


def test_check_convergence_fails_on_a_stale_generation() -> None:
    snap = _healthy()
    tenants = dict(snap.tenants)
    body = _body(ACTIVE, phase="Ready")
    body["metadata"]["generation"] = 2
    tenants[ACTIVE.name] = body
    assert checks.convergence(EXPECTED, Snapshot(tenants, snap.objects, snap.receipts))


def test_check_convergence_fails_on_a_stalled_cancellation() -> None:
    snap = _healthy()
    body = _body(WAITING, phase="Cancelled")
    body["status"]["conditions"].append(
        {"type": "Stalled", "status": "True", "reason": "InternalError", "message": "403"}
    )
    del body["status"]["cancellation"]
    tenants = {**snap.tenants, WAITING.name: body}
    found = checks.convergence(EXPECTED, Snapshot(tenants, snap.objects, snap.receipts))
    assert found == [
        "t-waiting: Stalled (InternalError: 403)",
        "t-waiting: cancelled with 90 days but no purge deadline stamped",
    ]


def test_check_convergence_fails_on_a_zero_day_tenant_left_behind() -> None:
    snap = _healthy()
    tenants = {**snap.tenants, PURGED.name: _body(PURGED, phase="Cancelled")}
    found = checks.convergence(EXPECTED, Snapshot(tenants, snap.objects, snap.receipts))
    assert any("cancelled with 0 days but still there" in f for f in found)


def test_check_desired_state_fails_on_a_missing_object() -> None:
    snap = _without(_healthy(), "NetworkPolicy", "default-deny", ACTIVE.name)
    found = checks.desired_state(EXPECTED, snap, RENDER)
    assert found == [
        f"t-active: missing NetworkPolicy/{tenant_namespace(ACTIVE.name)}/default-deny"
    ]


def test_check_desired_state_fails_on_an_object_of_an_old_spec() -> None:
    snap = _healthy()
    changed = _tenant(ACTIVE.name, days=90, sizing={"endpoints": 500, "requestsPerSecond": 200})
    found = checks.desired_state([changed, WAITING, PURGED], snap, RENDER)
    assert any("ResourceQuota" in f and "another spec" in f for f in found), found


def test_check_desired_state_fails_on_a_proxy_service_of_a_cancelled_tenant() -> None:
    service = _find(_healthy(), "Service", "proxy", ACTIVE.name)
    service["metadata"]["namespace"] = tenant_namespace(WAITING.name)
    service["metadata"]["labels"][checks.TENANT_LABEL] = WAITING.name
    found = checks.desired_state(EXPECTED, _with(_healthy(), service), RENDER)
    assert any("t-waiting: not desired but present: Service" in f for f in found), found


def test_check_orphans_fails_on_an_object_of_a_purged_tenant() -> None:
    orphan = _find(_healthy(), "ConfigMap", "proxy-config", ACTIVE.name)
    orphan["metadata"]["namespace"] = tenant_namespace(PURGED.name)
    orphan["metadata"]["labels"][checks.TENANT_LABEL] = PURGED.name
    found = checks.orphans(_with(_healthy(), orphan))
    assert found == [
        f"orphan ConfigMap/{tenant_namespace(PURGED.name)}/proxy-config labelled for tenant "
        f"{PURGED.name}, which is gone"
    ]
    assert checks.orphans(_with(_healthy(), orphan), scope={"someone-else"}) == []


def test_check_duplicates_fails_on_a_second_proxy_deployment() -> None:
    twin = _find(_healthy(), "Deployment", "proxy", ACTIVE.name)
    twin["metadata"]["name"] = "proxy-2"
    found = checks.duplicates(_with(_healthy(), twin))
    assert len(found) == 1
    assert "2 Deployments of role proxy" in found[0]


def test_check_duplicates_fails_on_a_name_in_two_namespaces() -> None:
    twin = _find(_healthy(), "NetworkPolicy", "default-deny", ACTIVE.name)
    twin["metadata"]["namespace"] = "elsewhere"
    found = checks.duplicates(_with(_healthy(), twin))
    assert found == [f"{ACTIVE.name}: NetworkPolicy default-deny exists in 2 namespaces"]


def test_check_premature_purges_fails_on_a_lost_log_claim() -> None:
    snap = _without(_healthy(), "PersistentVolumeClaim", "logstore-data", WAITING.name)
    found = checks.premature_purges(EXPECTED, snap)
    assert found == ["t-waiting: log volume claim gone or terminating before its 90 days"]


def test_check_premature_purges_fails_on_a_terminating_namespace() -> None:
    snap = _healthy()
    ns = _find(snap, "Namespace", tenant_namespace(WAITING.name), WAITING.name)
    ns["metadata"]["deletionTimestamp"] = "2026-11-26T00:00:00Z"
    snap = _with(_without(snap, "Namespace", tenant_namespace(WAITING.name), WAITING.name), ns)
    found = checks.premature_purges(EXPECTED, snap)
    assert any("namespace" in f and "terminating" in f for f in found), found


def test_check_premature_purges_fails_on_a_receipt_of_a_waiting_tenant() -> None:
    snap = _healthy()
    with_receipt = Snapshot(snap.tenants, snap.objects, [*snap.receipts, _receipt(WAITING)])
    found = checks.premature_purges(EXPECTED, with_receipt)
    assert found == ["t-waiting: has a purge receipt but must not be purged"]


def test_check_premature_purges_fails_on_a_waiting_tenant_gone() -> None:
    snap = _healthy()
    tenants = {k: v for k, v in snap.tenants.items() if k != WAITING.name}
    found = checks.premature_purges(EXPECTED, Snapshot(tenants, snap.objects, snap.receipts))
    assert "t-waiting: purged (resource gone) before its 90 days" in found


def test_check_a_tenant_deleted_before_its_finalizer_is_gone_at_once() -> None:
    """Cancelled with 90 days before the operator first saw it: the API server removes it at
    once, nothing was made for it, and nothing is owed; anything left of it is an orphan."""
    snap = _healthy()
    early = replace(_tenant("t-early", days=90, deleted=True), finalized=False)
    expected = [*EXPECTED, early]
    assert checks.convergence(expected, snap) == []
    assert checks.desired_state(expected, snap, RENDER) == []
    assert checks.premature_purges(expected, snap) == []
    assert not replace(early, finalized=True).gone
    assert checks.premature_purges([replace(early, finalized=True)], snap)


def test_a_tenant_deleted_before_its_finalizer_has_settled_once_gone() -> None:
    """The scenario waits for every tenant to settle: one cancelled with 90 days before the
    operator put its finalizer on it is gone at once, and that is settled (a run of seed
    1224498302 waited for it until the convergence deadline and failed)."""
    early = Tenant("t-early", 90, {}, created=True, deleted=True, finalized=False)
    assert settled(early, None)
    assert not settled(replace(early, finalized=True), None)
    waiting = replace(early, finalized=True)
    body = _healthy().tenants[WAITING.name]
    assert settled(replace(waiting, name=WAITING.name, spec=dict(WAITING.spec)), body)
    assert not settled(replace(early, deleted=False), None)


def test_check_a_tenant_cancelled_before_its_namespace_was_made_may_keep_nothing() -> None:
    """Cancelled with 90 days before the operator made its namespace: it keeps nothing for
    export, and that is no early purge. A waiting tenant whose namespace existed at the
    cancellation still must keep it, and one not provisioned that has objects is checked."""
    snap = _healthy()
    bare = _without(snap, "Namespace", tenant_namespace(WAITING.name), WAITING.name)
    for o in checks.objects_of(snap, WAITING.name):
        bare = _without(bare, o["kind"], o["metadata"]["name"], WAITING.name)
    unprovisioned = [replace(e, provisioned=False) if e is WAITING else e for e in EXPECTED]
    assert checks.premature_purges(unprovisioned, bare) == []
    assert checks.desired_state(unprovisioned, bare, RENDER) == []
    assert checks.premature_purges(EXPECTED, bare)
    assert checks.desired_state(EXPECTED, bare, RENDER)
    lost_claim = _without(snap, "PersistentVolumeClaim", "logstore-data", WAITING.name)
    assert checks.premature_purges(unprovisioned, lost_claim)


def test_check_receipts_fails_on_a_finalizer_released_without_a_receipt() -> None:
    snap = _healthy()
    found = checks.receipts(EXPECTED, Snapshot(snap.tenants, snap.objects, []))
    assert found == ["t-purged: gone (finalizer released) without a purge receipt"]


def test_check_receipts_fails_on_an_unfinished_or_early_receipt() -> None:
    snap = _healthy()
    receipt = _receipt(PURGED)
    receipt["data"].update(state="Purging", completedAt="2026-11-25T23:59:59Z")
    found = checks.receipts(EXPECTED, Snapshot(snap.tenants, snap.objects, [receipt]))
    assert len(found) == 2, found


def _quota_charged(snapshot: Snapshot, tenant: str, used: str) -> Snapshot:
    quota = _find(snapshot, "ResourceQuota", "tenant-quota", tenant)
    quota["status"] = {
        "hard": {"persistentvolumeclaims": "1"},
        "used": {"persistentvolumeclaims": used},
    }
    return _with(_without(snapshot, "ResourceQuota", "tenant-quota", tenant), quota)


def test_check_a_leaked_quota_charge_is_reported_and_excuses_nothing() -> None:
    without_claim = _without(_healthy(), "PersistentVolumeClaim", "logstore-data", WAITING.name)
    leaked = _quota_charged(without_claim, WAITING.name, used="1")
    assert checks.quota_charge_leaks(leaked) == [WAITING.name]
    # No exemption: the missing claim is a violation like any other.
    assert checks.premature_purges(EXPECTED, leaked) == [
        "t-waiting: log volume claim gone or terminating before its 90 days"
    ]
    assert f"t-waiting: missing PersistentVolumeClaim/{tenant_namespace(WAITING.name)}/" in "".join(
        checks.desired_state(EXPECTED, leaked, RENDER)
    )
    # Released charge: the claim was deleted, which a tenant waiting 90 days must never see.
    purged = _quota_charged(without_claim, WAITING.name, used="0")
    assert checks.quota_charge_leaks(purged) == []
    assert checks.premature_purges(EXPECTED, purged) == [
        "t-waiting: log volume claim gone or terminating before its 90 days"
    ]
