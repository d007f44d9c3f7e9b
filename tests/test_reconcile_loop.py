"""The one reconcile, end to end in memory: the real renderer, the in-memory `KubeApi` fake."""

from __future__ import annotations

import asyncio
import copy
import datetime
from typing import Any

import pytest

from fakes import FakeKube, bind_log_volume, make_available, watch_cache
from reconcile_support import fake_cluster, stored_tenant
from swg_operator.api import OperatorSettings
from swg_operator.kube import KubeApiError
from swg_operator.kube.kinds import DEPLOYMENT, TENANT
from swg_operator.reconcile.loop import Context, PurgePolicy, TransientError, reconcile
from swg_operator.reconcile.purge import NotYet, cancel_and_purge, receipt_name

SETTINGS = OperatorSettings()
NOW = datetime.datetime(2026, 1, 1, 12, 0, tzinfo=datetime.UTC)


def tenant(name: str = "acme", **spec: Any) -> dict[str, Any]:
    return stored_tenant(name, **spec)


def setup(body: dict[str, Any]) -> tuple[FakeKube, Context]:
    return fake_cluster(body, SETTINGS, NOW)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def fresh(kube: FakeKube, name: str = "acme") -> dict[str, Any]:
    obj = kube.find("SecureWebGateway", name)
    assert obj is not None
    return copy.deepcopy(obj)


def children(kube: FakeKube) -> set[str]:
    return {f"{k}/{n}" for (_, k, ns, n) in kube.objects if ns == "swg-acme"}


def test_an_unchanged_tenant_observed_from_the_watches_costs_no_request() -> None:
    """With the cache the watches feed (the running operator), a reconcile of a tenant whose
    objects are as desired asks the API server nothing: no LIST, no GET, no write, no Event."""
    kube, ctx = setup(tenant())
    ctx.cache = watch_cache(kube, SETTINGS.operator_namespace)
    run(reconcile(fresh(kube), ctx=ctx))
    make_available(kube)
    run(reconcile(fresh(kube), ctx=ctx))
    assert fresh(kube)["status"]["phase"] == "Ready"
    kube.reads.clear()
    kube.writes.clear()
    events = len(kube.events)
    outcome = run(reconcile(fresh(kube), ctx=ctx))
    assert outcome.result == "ok"
    assert kube.reads == []
    assert kube.writes == []
    assert len(kube.events) == events


def test_the_cache_and_the_lists_observe_the_same_drift() -> None:
    """A Deployment deleted by hand is restored whether the reconcile observes from the
    watches or with LISTs."""
    for cached in (False, True):
        kube, ctx = setup(tenant())
        if cached:
            ctx.cache = watch_cache(kube, SETTINGS.operator_namespace)
        run(reconcile(fresh(kube), ctx=ctx))
        run(kube.delete(DEPLOYMENT, "proxy", namespace="swg-acme"))
        run(reconcile(fresh(kube), ctx=ctx))
        assert kube.find("Deployment", "proxy", "swg-acme") is not None
        assert [e["reason"] for e in kube.events if e["namespace"] is None][-1] == "Restored"


def test_a_claim_the_api_server_defaulted_is_not_reverted() -> None:
    """The API server fills in a claim's class and volume; the digest stamped on it is the
    rendered manifest's, so the next reconcile neither re-applies it nor says it was changed
    by hand."""
    kube, ctx = setup(tenant())
    run(reconcile(fresh(kube), ctx=ctx))
    claim = kube.edit("PersistentVolumeClaim", "logstore-data", "swg-acme")
    claim["spec"]["storageClassName"] = "standard"
    claim["spec"]["volumeMode"] = "Filesystem"
    bind_log_volume(kube, "swg-acme")
    kube.writes.clear()
    run(reconcile(fresh(kube), ctx=ctx))
    assert not [w for w in kube.writes if "PersistentVolumeClaim" in w[1]]
    assert "Reverted" not in {e["reason"] for e in kube.events}


def test_create_then_ready_then_idle_costs_no_write() -> None:
    kube, ctx = setup(tenant())
    outcome = run(reconcile(fresh(kube), ctx=ctx))
    assert outcome.result == "ok"
    # Every object write the API server saw is counted once (the status write is not one, nor
    # the notice history's, created once with the change notice and the operator's version).
    notices = [w for w in kube.writes if w[1] == "ConfigMap/swg-acme/tenant-notices"]
    assert notices == [("create", "ConfigMap/swg-acme/tenant-notices")]
    object_writes = [w for w in kube.writes if w[0] != "status" and w not in notices]
    assert outcome.writes == len(object_writes) == len(set(object_writes))
    assert kube.find("Namespace", "swg-acme") is not None
    assert {"Deployment/proxy", "Deployment/antivirus"} <= children(kube)
    assert fresh(kube)["status"]["phase"] == "Provisioning"
    # The change notice on the tenant, and the same for the admins in the tenant namespace.
    assert [(e["reason"], e["namespace"]) for e in kube.events] == [
        ("Created", None),
        ("Created", "swg-acme"),
    ]
    make_available(kube)
    run(reconcile(fresh(kube), ctx=ctx))
    assert fresh(kube)["status"]["phase"] == "Ready"
    kube.writes.clear()
    run(reconcile(fresh(kube), ctx=ctx))
    assert kube.writes == []  # an idle tenant: zero API writes


def test_drift_is_restored_and_announced() -> None:
    kube, ctx = setup(tenant())
    run(reconcile(fresh(kube), ctx=ctx))
    make_available(kube)
    run(reconcile(fresh(kube), ctx=ctx))
    policy = next(k for k in kube.objects if k[1] == "NetworkPolicy")
    del kube.objects[policy]
    quota = kube.edit("ResourceQuota", "tenant-quota", "swg-acme")
    quota["spec"]["hard"]["limits.cpu"] = "999"
    kube.events.clear()
    run(reconcile(fresh(kube), ctx=ctx))
    assert policy in kube.objects
    assert (
        kube.find("ResourceQuota", "tenant-quota", "swg-acme")["spec"]["hard"]["limits.cpu"]
        != "999"
    )
    assert {e["reason"] for e in kube.events} == {"Restored", "Reverted"}


def test_antivirus_off_prunes_and_on_restores() -> None:
    kube, ctx = setup(tenant())
    run(reconcile(fresh(kube), ctx=ctx))
    body = fresh(kube)
    body["spec"]["antivirus"] = {"enabled": False}
    body["metadata"]["generation"] = 2
    kube.objects[(TENANT.api_version, TENANT.kind, None, "acme")] = copy.deepcopy(body)
    run(reconcile(body, ctx=ctx))
    assert "Deployment/antivirus" not in children(kube)
    assert "PersistentVolumeClaim/logstore-data" in children(kube)
    assert "Pruned" in {e["reason"] for e in kube.events}
    body = fresh(kube)
    body["spec"]["antivirus"] = {"enabled": True}
    body["metadata"]["generation"] = 3
    run(reconcile(body, ctx=ctx))
    assert "Deployment/antivirus" in children(kube)


def test_invalid_spec_is_stalled_without_a_write_to_children() -> None:
    body = tenant(sizing={"endpoints": 0, "requestsPerSecond": 1})
    kube, ctx = setup(body)
    outcome = run(reconcile(fresh(kube), ctx=ctx))
    assert outcome.result == "invalid_spec"
    stalled = next(c for c in fresh(kube)["status"]["conditions"] if c["type"] == "Stalled")
    assert stalled["status"] == "True"
    assert "spec.sizing.endpoints" in stalled["message"]
    assert [w for w in kube.writes if w[0] != "status"] == []


def test_transient_errors_surface_for_backoff() -> None:
    kube, ctx = setup(tenant())
    kube.fail_next.append(KubeApiError(429, "slow down", reason="TooManyRequests"))
    with pytest.raises(TransientError):
        run(reconcile(fresh(kube), ctx=ctx))


def test_a_write_into_a_namespace_being_deleted_is_retried_not_a_bug() -> None:
    """The purge deleted the namespace and a reconcile's copy of it was older: the API server
    refuses new objects in it (403, the namespace lifecycle admission) until it is gone, and
    then the watch says so. Seen in the chaos run as a bug with a traceback and `Degraded`."""
    kube, ctx = setup(tenant())
    refused = KubeApiError(
        403,
        'serviceaccounts "default" is forbidden: unable to create new content in namespace '
        "swg-acme because it is being terminated",
        reason="Forbidden",
    )
    kube.fail_next.append(refused)
    with pytest.raises(TransientError):
        run(reconcile(fresh(kube), ctx=ctx))
    assert "status" not in fresh(kube)
    assert not KubeApiError(403, 'secrets "x" is forbidden: User cannot get').transient


def test_suspend_scales_to_zero_and_keeps_the_log_store() -> None:
    kube, ctx = setup(tenant(suspended=True))
    run(reconcile(fresh(kube), ctx=ctx))
    make_available(kube)
    run(reconcile(fresh(kube), ctx=ctx))
    assert kube.find("Deployment", "proxy", "swg-acme")["spec"]["replicas"] == 0
    assert fresh(kube)["status"]["phase"] == "Suspended"
    assert kube.find("PersistentVolumeClaim", "logstore-data", "swg-acme") is not None


def _cancel(kube: FakeKube, days: int) -> dict[str, Any]:
    """Deleted with `days` to the purge, as the operator last handled the spec (its status
    keeps them: an edit made with the deletion could not shorten the wait)."""
    body = fresh(kube)
    body["spec"]["cancellation"] = {"purgeAfterDays": days}
    body["status"]["purgeAfterDays"] = days
    body["metadata"]["deletionTimestamp"] = "2026-01-01T12:00:00Z"
    body["metadata"]["generation"] += 1
    kube.objects[(TENANT.api_version, TENANT.kind, None, "acme")] = copy.deepcopy(body)
    return body


def test_cancellation_waits_by_the_server_clock_then_purges_with_a_receipt() -> None:
    kube, ctx = setup(tenant())
    run(reconcile(fresh(kube), ctx=ctx))
    _cancel(kube, 90)
    # The operator's clock is 91 days ahead; the API server's is not: nothing happens.
    ctx.clock = lambda: NOW + datetime.timedelta(days=91)
    with pytest.raises(NotYet):
        run(cancel_and_purge(fresh(kube), ctx=ctx))
    status = fresh(kube)["status"]
    assert status["phase"] == "Cancelled"
    assert status["cancellation"]["purgeAt"] == "2026-04-01T12:00:00Z"
    assert "Service/proxy" not in children(kube)  # traffic stopped
    assert "PersistentVolumeClaim/logstore-data" in children(kube)  # logs kept
    cancelled = [e for e in kube.events if e["reason"] == "Cancelled"]
    # On the tenant, and for its admins in the tenant namespace.
    assert [e["namespace"] for e in cancelled] == [None, "swg-acme"]
    assert "2026-04-01T12:00:00Z" in cancelled[0]["message"]
    kube.server_now = NOW + datetime.timedelta(days=90, seconds=1)
    final = run(cancel_and_purge(fresh(kube), ctx=ctx))
    assert final.phase == "Purged"
    assert children(kube) == set()
    assert kube.find("Namespace", "swg-acme") is None
    receipt = kube.find("ConfigMap", receipt_name(fresh(kube)), SETTINGS.operator_namespace)
    assert receipt is not None
    assert receipt["data"]["state"] == "Completed"
    assert "Deployment/swg-acme/proxy" in receipt["data"]["inventory.json"]
    assert "Purged" in {e["reason"] for e in kube.events}


def test_local_clock_mode_purges_by_the_local_clock_after_the_margin() -> None:
    kube, ctx = setup(tenant())
    run(reconcile(fresh(kube), ctx=ctx))
    _cancel(kube, 90)
    ctx.purge = PurgePolicy(clock="local")  # type: ignore[arg-type]
    ctx.clock = lambda: NOW + datetime.timedelta(days=90, minutes=5)
    with pytest.raises(NotYet):
        run(cancel_and_purge(fresh(kube), ctx=ctx))
    ctx.clock = lambda: NOW + datetime.timedelta(days=91)
    assert run(cancel_and_purge(fresh(kube), ctx=ctx)).phase == "Purged"


def test_a_purge_interrupted_after_the_namespace_went_completes_without_recreating() -> None:
    kube, ctx = setup(tenant())
    run(reconcile(fresh(kube), ctx=ctx))
    _cancel(kube, 0)
    kube.server_now = NOW + datetime.timedelta(seconds=1)
    # The first attempt dies right after the namespace was deleted, before the receipt.
    kube.crash_after_delete.add("Namespace")
    with pytest.raises(TransientError):
        run(cancel_and_purge(fresh(kube), ctx=ctx))
    assert fresh(kube)["status"]["phase"] == "Purging"
    assert kube.find("Namespace", "swg-acme") is None
    final = run(cancel_and_purge(fresh(kube), ctx=ctx))
    assert final.phase == "Purged"
    assert kube.find("Namespace", "swg-acme") is None
    receipt = kube.find("ConfigMap", receipt_name(fresh(kube)), SETTINGS.operator_namespace)
    assert receipt is not None
    assert "Deployment/swg-acme/proxy" in receipt["data"]["inventory.json"]


def test_platform_signatures_from_the_operator_namespace_reach_the_tenant() -> None:
    settings = OperatorSettings.model_validate({"antivirus": {"signatureSource": "configMap"}})
    kube, _ = setup(tenant())
    ctx = Context(kube=kube, settings=settings, clock=lambda: NOW)
    # Without the platform's ConfigMap an anti-virus tenant cannot be served: Stalled, named.
    outcome = run(reconcile(fresh(kube), ctx=ctx))
    assert outcome.result == "invalid_spec"
    stalled = next(c for c in fresh(kube)["status"]["conditions"] if c["type"] == "Stalled")
    assert stalled["status"] == "True"
    assert stalled["reason"] == "SignaturesUnavailable"
    kube.put(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": settings.antivirus.signature_config_map,
                "namespace": settings.operator_namespace,
            },
            "data": {"platform.ndb": "Platform.Test:0:*:deadbeefcafe\n"},
        }
    )
    outcome = run(reconcile(fresh(kube), ctx=ctx))
    assert outcome.result == "ok"
    copied = kube.find("ConfigMap", "antivirus-platform-signatures", namespace="swg-acme")
    assert copied is not None
    assert copied["data"] == {"platform.ndb": "Platform.Test:0:*:deadbeefcafe\n"}


def _leak_claim_charge(kube: FakeKube) -> None:
    """The state a create killed mid-request leaves: the quota charged for the log claim, which
    was never stored."""
    del kube.objects[("v1", "PersistentVolumeClaim", "swg-acme", "logstore-data")]
    kube.leak_claim_charge("swg-acme")


def _bug_reports() -> float:
    from swg_operator import metrics

    return metrics.RECONCILE_ERRORS.labels(kind="bug")._value.get()


def test_a_quota_charged_for_a_claim_that_does_not_exist_is_recreated_at_once() -> None:
    kube, ctx = setup(tenant())
    run(reconcile(fresh(kube), ctx=ctx))
    make_available(kube)
    run(reconcile(fresh(kube), ctx=ctx))
    _leak_claim_charge(kube)
    bugs = _bug_reports()
    kube.events.clear()
    # The claim is refused (exceeded quota): the charged quota goes, the reconcile is retried.
    with pytest.raises(TransientError):
        run(reconcile(fresh(kube), ctx=ctx))
    assert kube.find("ResourceQuota", "tenant-quota", "swg-acme") is None
    assert ("delete", "ResourceQuota/swg-acme/tenant-quota") in kube.writes
    recovered = [e for e in kube.events if e["reason"] == "QuotaChargeRecovered"]
    assert recovered
    assert recovered[0]["type"] == "Warning"
    assert "logstore-data" in recovered[0]["message"]
    # The retry creates the claim, then the quota again (a new quota counts what exists).
    outcome = run(reconcile(fresh(kube), ctx=ctx))
    assert outcome.result == "ok"
    assert kube.find("PersistentVolumeClaim", "logstore-data", "swg-acme") is not None
    assert kube.find("ResourceQuota", "tenant-quota", "swg-acme") is not None
    assert _bug_reports() == bugs  # never reported as a bug
    assert fresh(kube)["status"]["phase"] != "Degraded"


def test_a_first_create_applies_the_log_claim_before_the_quota() -> None:
    kube, ctx = setup(tenant())
    run(reconcile(fresh(kube), ctx=ctx))
    applied = [w for verb, w in kube.writes if verb == "apply"]
    claim = applied.index("PersistentVolumeClaim/swg-acme/logstore-data")
    assert claim < applied.index("ResourceQuota/swg-acme/tenant-quota")


def test_a_claim_refused_by_a_quota_that_counts_a_real_claim_is_transient_not_a_bug() -> None:
    kube, ctx = setup(tenant())
    run(reconcile(fresh(kube), ctx=ctx))
    # Someone else's claim uses the quota up: the quota is right and stays; retried, no bug.
    del kube.objects[("v1", "PersistentVolumeClaim", "swg-acme", "logstore-data")]
    kube.put(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "by-hand", "namespace": "swg-acme"},
            "spec": {},
        }
    )
    quota = kube.edit("ResourceQuota", "tenant-quota", "swg-acme")
    quota["status"] = {
        "hard": {"persistentvolumeclaims": "1"},
        "used": {"persistentvolumeclaims": "1"},
    }
    bugs = _bug_reports()
    with pytest.raises(TransientError):
        run(reconcile(fresh(kube), ctx=ctx))
    assert kube.find("ResourceQuota", "tenant-quota", "swg-acme") is not None
    assert _bug_reports() == bugs


def _purge_until_done(kube: FakeKube, ctx: Context, attempts: int = 5) -> Any:
    for _ in range(attempts):
        try:
            return run(cancel_and_purge(fresh(kube), ctx=ctx))
        except (TransientError, NotYet):
            continue
    raise AssertionError(f"not purged after {attempts} attempts")


def test_a_deleted_tenant_with_a_leaked_quota_charge_still_reaches_its_purge() -> None:
    kube, ctx = setup(tenant())
    run(reconcile(fresh(kube), ctx=ctx))
    _leak_claim_charge(kube)
    _cancel(kube, 0)
    kube.server_now = NOW + datetime.timedelta(seconds=1)
    assert _purge_until_done(kube, ctx).phase == "Purged"
    assert kube.find("Namespace", "swg-acme") is None
    receipt = kube.find("ConfigMap", receipt_name(fresh(kube)), SETTINGS.operator_namespace)
    assert receipt is not None
    assert receipt["data"]["state"] == "Completed"


def test_a_cancellation_reconcile_that_keeps_failing_does_not_hold_back_a_due_purge() -> None:
    kube, ctx = setup(tenant())
    run(reconcile(fresh(kube), ctx=ctx))
    _cancel(kube, 90)
    # Every apply in the tenant namespace is refused for good (an admission webhook, say).
    kube.refuse_applies["swg-acme"] = KubeApiError(
        403, "admission webhook denied the request", reason="Forbidden"
    )
    # Not due: the failure is raised (retried by the handler), nothing is purged, and the
    # deadline is stamped all the same.
    with pytest.raises(KubeApiError):
        run(cancel_and_purge(fresh(kube), ctx=ctx))
    assert kube.find("Namespace", "swg-acme") is not None
    status = fresh(kube)["status"]
    assert status["cancellation"]["purgeAt"] == "2026-04-01T12:00:00Z"
    # Due: the purge goes ahead (deleting the namespace stops the traffic the reconcile could not).
    kube.server_now = NOW + datetime.timedelta(days=90, seconds=1)
    assert _purge_until_done(kube, ctx).phase == "Purged"
    assert kube.find("Namespace", "swg-acme") is None


def test_a_purged_tenant_leaves_nothing_behind_in_the_context() -> None:
    kube, ctx = setup(tenant())
    run(reconcile(fresh(kube), ctx=ctx))
    assert any(key.namespace == "swg-acme" for key in ctx.applied)
    ctx.forget_tenant("acme")
    assert not [key for key in ctx.applied if "swg-acme" in (key.namespace, key.name)]
    assert "acme" not in ctx.status_versions
