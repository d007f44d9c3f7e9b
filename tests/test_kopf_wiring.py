"""What kopf does on every watch event, kept cheap: each handler it calls per event is a
coroutine (kopf runs a plain function in a thread pool, a hand-over per event that cost the
operator about a quarter of its CPU while it provisioned), and its last-handled state is built
for tenants only (for every other kind it would deep-copy the object for nothing)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import kopf

from swg_operator.api import API_VERSION, KIND, OperatorSettings
from swg_operator.handlers import RunOptions, TenantDiffBase, register
from swg_operator.reconcile.context import PurgePolicy

LAST_HANDLED = "swg.dev/last-handled-configuration"


def registered() -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()
    register(registry, RunOptions(settings=OperatorSettings(), purge=PurgePolicy()))
    return registry


def test_every_handler_kopf_calls_per_event_is_a_coroutine() -> None:
    registry = registered()
    handlers = [
        *registry._indexing.get_all_handlers(),
        *registry._watching.get_all_handlers(),
        *registry._changing.get_all_handlers(),
        *registry._spawning.get_all_handlers(),
    ]
    # The tenants' and the operator namespace's ConfigMaps' (the owned kinds are the informers').
    assert {h.id for h in handlers} >= {"tenant_bodies", "tenant", "purge", "catalogue"}
    plain = sorted(h.id for h in handlers if not asyncio.iscoroutinefunction(h.fn))
    assert plain == [], f"run in kopf's thread pool on every event: {plain}"


def deployment() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "proxy", "namespace": "swg-acme", "labels": {"app": "proxy"}},
        "spec": {"replicas": 2},
    }


def tenant(annotations: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": "acme", "annotations": annotations},
        "spec": {"serviceCode": "SWG-0001"},
    }


def test_the_last_handled_state_is_kept_for_tenants_only() -> None:
    storage = TenantDiffBase(prefix="swg.dev", key="last-handled-configuration")
    child = kopf.Body(deployment())
    assert storage.build(body=child) == {}
    assert storage.fetch(body=child) == {}
    stored = {"spec": {"serviceCode": "SWG-0001"}}
    body = kopf.Body(tenant({LAST_HANDLED: json.dumps(stored)}))
    assert storage.fetch(body=body) == stored
    assert storage.build(body=body)["spec"] == {"serviceCode": "SWG-0001"}
    listed = deployment()
    del listed["kind"]  # a listed item may lack its kind: maybe a tenant, built in full
    assert storage.build(body=kopf.Body(listed))["spec"] == {"replicas": 2}
