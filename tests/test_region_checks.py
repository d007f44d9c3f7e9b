"""Which StorageClasses keep a tenant's log volume in its region, and which nodes count as the
region's (reconcile/region.py); the cluster behaviour is e2e/test_region.py."""

from __future__ import annotations

from typing import Any

import pytest

from swg_operator.reconcile.region import (
    REGION_UNAVAILABLE,
    STORAGE_CLASS_NOT_REGIONAL,
    STORAGE_CLASS_OUTSIDE_REGION,
    ready_nodes,
    storage_class_problem,
)

REGION = "topology.kubernetes.io/region"


def _class(mode: str | None = None, *regions: list[str], zone: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {"metadata": {"name": "ssd"}}
    if mode:
        body["volumeBindingMode"] = mode
    terms = [{"matchLabelExpressions": [{"key": REGION, "values": r}]} for r in regions]
    if zone:
        terms.append(
            {"matchLabelExpressions": [{"key": "topology.kubernetes.io/zone", "values": ["z"]}]}
        )
    if terms:
        body["allowedTopologies"] = terms
    return body


@pytest.mark.parametrize(
    ("storage_class", "reason"),
    [
        (_class("WaitForFirstConsumer"), None),
        (_class("Immediate", ["eu-west"]), None),
        (_class(None, ["eu-west"]), None),
        (_class("WaitForFirstConsumer", ["eu-west", "us-east"]), None),
        (_class("Immediate"), STORAGE_CLASS_NOT_REGIONAL),
        (_class(None), STORAGE_CLASS_NOT_REGIONAL),  # Immediate is the default mode
        (_class("Immediate", ["eu-west", "us-east"]), STORAGE_CLASS_NOT_REGIONAL),
        (_class("Immediate", ["eu-west"], zone=True), STORAGE_CLASS_NOT_REGIONAL),
        (_class("WaitForFirstConsumer", ["us-east"]), STORAGE_CLASS_OUTSIDE_REGION),
        (_class("Immediate", ["us-east"], ["ap-south"]), STORAGE_CLASS_OUTSIDE_REGION),
    ],
)
def test_a_class_keeps_the_volume_in_the_region_or_is_named(
    storage_class: dict[str, Any], reason: str | None
) -> None:
    problem = storage_class_problem(storage_class, "eu-west")
    assert (problem.reason if problem else None) == reason
    if problem is not None:
        assert problem.message.startswith("spec.placement.region: StorageClass 'ssd'")


def _node(name: str, region: str, *, ready: str = "True", cordoned: bool = False) -> Any:
    return {
        "metadata": {"name": name, "labels": {REGION: region}},
        "spec": {"unschedulable": True} if cordoned else {},
        "status": {"conditions": [{"type": "Ready", "status": ready}]},
    }


def test_only_ready_schedulable_nodes_of_the_region_count() -> None:
    nodes = [
        _node("a1", "eu-west"),
        _node("a2", "eu-west", ready="False"),
        _node("a3", "eu-west", ready="Unknown"),
        _node("a4", "eu-west", cordoned=True),
        _node("b1", "us-east"),
        {"metadata": {"name": "bare", "labels": {REGION: "eu-west"}}},
    ]
    assert ready_nodes(nodes, "eu-west") == ["a1"]
    assert ready_nodes(nodes[1:], "eu-west") == []
    assert REGION_UNAVAILABLE == "RegionUnavailable"
