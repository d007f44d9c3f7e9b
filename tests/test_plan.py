"""reconcile.plan: what to apply and what to prune, from hand-made desired and observed objects."""

from __future__ import annotations

import copy
from typing import Any

from swg_operator.reconcile.plan import (
    APPLIED_DIGEST_ANNOTATION,
    ObjectKey,
    contains,
    is_current,
    plan_changes,
    with_digest,
)

OWNER = {"app.kubernetes.io/managed-by": "swg-operator", "swg.dev/tenant": "acme"}
NS = "swg-acme"


def obj(
    api_version: str, kind: str, name: str, namespace: str | None = NS, **body: Any
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": dict(OWNER)}
    if namespace:
        meta["namespace"] = namespace
    return {"apiVersion": api_version, "kind": kind, "metadata": meta, **body}


def desired_state(antivirus: bool = True) -> list[dict[str, Any]]:
    objects = [
        obj("v1", "Namespace", NS, namespace=None),
        obj(
            "v1",
            "ResourceQuota",
            "tenant-quota",
            spec={"hard": {"limits.cpu": "2", "limits.memory": "4Gi"}},
        ),
        obj(
            "networking.k8s.io/v1",
            "NetworkPolicy",
            "default-deny",
            spec={"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
        ),
        obj(
            "v1",
            "PersistentVolumeClaim",
            "logstore-data",
            spec={"resources": {"requests": {"storage": "10Gi"}}},
        ),
        obj("apps/v1", "Deployment", "proxy", spec={"replicas": 2}),
    ]
    if antivirus:
        objects += [
            obj("apps/v1", "Deployment", "antivirus", spec={"replicas": 1}),
            obj("v1", "Service", "antivirus", spec={"ports": [{"port": 1344}]}),
        ]
    return objects


def as_stored(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the API server holds after applying `objects`: stamped, with server-added fields."""
    stored = []
    for o in objects:
        s = with_digest(o)
        s["metadata"]["uid"] = "u-" + s["metadata"]["name"]
        s["metadata"]["resourceVersion"] = "7"
        s.setdefault("status", {})
        stored.append(s)
    return stored


def test_everything_is_created_from_nothing_in_render_order() -> None:
    desired = desired_state()
    plan = plan_changes(desired, [])
    assert [o["kind"] for o in plan.apply] == [o["kind"] for o in desired]
    assert len(plan.created) == len(desired)
    assert plan.updated == ()
    assert plan.prune == ()
    assert all(APPLIED_DIGEST_ANNOTATION in o["metadata"]["annotations"] for o in plan.apply)


def test_an_idle_tenant_costs_no_write() -> None:
    desired = desired_state()
    plan = plan_changes(desired, as_stored(desired))
    assert plan.writes == 0
    assert len(plan.unchanged) == len(desired)


def test_a_deleted_child_is_recreated_and_an_edited_one_reverted() -> None:
    desired = desired_state()
    observed = [o for o in as_stored(desired) if o["kind"] != "NetworkPolicy"]
    quota = next(o for o in observed if o["kind"] == "ResourceQuota")
    quota["spec"]["hard"]["limits.cpu"] = "64"
    plan = plan_changes(desired, observed)
    assert plan.created == (ObjectKey("networking.k8s.io/v1", "NetworkPolicy", NS, "default-deny"),)
    assert plan.updated == (ObjectKey("v1", "ResourceQuota", NS, "tenant-quota"),)
    assert plan.writes == 2


def test_antivirus_off_prunes_its_objects_but_never_the_namespace_or_log_volume() -> None:
    observed = as_stored(desired_state(antivirus=True))
    plan = plan_changes(desired_state(antivirus=False), observed)
    assert set(plan.prune) == {
        ObjectKey("apps/v1", "Deployment", NS, "antivirus"),
        ObjectKey("v1", "Service", NS, "antivirus"),
    }
    assert plan.apply == ()


def test_namespace_and_log_volume_survive_an_empty_desired_state() -> None:
    plan = plan_changes([], as_stored(desired_state()))
    kinds = {key.kind for key in plan.prune}
    assert "Namespace" not in kinds
    assert "PersistentVolumeClaim" not in kinds
    assert "Deployment" in kinds


def test_a_changed_desired_field_is_applied() -> None:
    desired = desired_state()
    observed = as_stored(desired)
    bigger = copy.deepcopy(desired)
    next(o for o in bigger if o["metadata"]["name"] == "proxy")["spec"]["replicas"] = 5
    plan = plan_changes(bigger, observed)
    assert plan.updated == (ObjectKey("apps/v1", "Deployment", NS, "proxy"),)


def test_a_dropped_desired_field_is_applied_although_the_rest_is_a_subset() -> None:
    desired = desired_state()
    observed = as_stored(desired)
    fewer = copy.deepcopy(desired)
    del next(o for o in fewer if o["kind"] == "ResourceQuota")["spec"]["hard"]["limits.memory"]
    plan = plan_changes(fewer, observed)
    assert plan.updated == (ObjectKey("v1", "ResourceQuota", NS, "tenant-quota"),)


def test_server_canonical_quantities_are_not_drift() -> None:
    want = {"spec": {"hard": {"cpu": "1000m", "memory": "1024Mi", "n": 3}}}
    have = {"spec": {"hard": {"cpu": "1", "memory": "1Gi", "n": 3, "extra": "x"}}}
    assert contains(want, have)
    assert not contains({"spec": {"hard": {"cpu": "2"}}}, have)
    assert not contains({"a": [1, 2]}, {"a": [1, 2, 3]})
    assert not contains({"a": True}, {"a": 1})


def test_an_object_being_deleted_is_not_current() -> None:
    desired = desired_state()[1]
    stored = as_stored([desired])[0]
    assert is_current(desired, stored)
    stored["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert not is_current(desired, stored)


def test_empty_desired_values_match_fields_the_server_dropped() -> None:
    want = {"spec": {"podSelector": {}, "ingress": [], "egress": None, "types": ["Ingress"]}}
    assert contains(want, {"spec": {"podSelector": {}, "types": ["Ingress"]}})
    assert not contains(
        want, {"spec": {"podSelector": {}, "ingress": [{"from": []}], "types": ["Ingress"]}}
    )


def test_an_existing_volume_claim_keeps_its_size_and_class() -> None:
    desired = desired_state()
    observed = as_stored(desired)
    claim = next(o for o in observed if o["kind"] == "PersistentVolumeClaim")
    claim["spec"]["storageClassName"] = "kwok-local"
    claim["spec"]["volumeName"] = "pv-1"
    bigger = copy.deepcopy(desired)
    wanted = next(o for o in bigger if o["kind"] == "PersistentVolumeClaim")
    wanted["spec"]["resources"]["requests"]["storage"] = "50Gi"
    plan = plan_changes(bigger, observed)
    for applied in plan.apply:  # at most once, to take over the fields the server filled in
        assert applied["spec"]["resources"]["requests"]["storage"] == "10Gi"
        assert applied["spec"]["storageClassName"] == "kwok-local"
    fresh = plan_changes(bigger, [o for o in observed if o["kind"] != "PersistentVolumeClaim"])
    applied = next(o for o in fresh.apply if o["kind"] == "PersistentVolumeClaim")
    assert applied["spec"]["resources"]["requests"]["storage"] == "50Gi"
