"""What kopf does on every watch event, kept cheap: each handler it calls per event is a
coroutine (kopf runs a plain function in a thread pool, a hand-over per event that cost the
operator about a quarter of its CPU while it provisioned), and it keeps no last-handled state
(which cost a patch of the tenant and a deep copy of every object per event)."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import kopf
import pytest
from kopf._core.actions.loggers import ObjectLogger

from swg_operator.api import API_VERSION, KIND, OperatorSettings
from swg_operator.handlers import NoDiffBase, RunOptions, configure_kopf, register, waiting
from swg_operator.reconcile.context import PurgePolicy
from swg_operator.reconcile.purge import NotYet

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


def test_kopf_keeps_no_last_handled_state() -> None:
    """kopf compares the stored essence with the one it builds: always the same empty one, so
    no event is a change to handle and nothing is added to its patch (once it was an
    annotation patch per new tenant and per spec change, and a deep copy per event)."""
    storage = NoDiffBase()
    for obj in (deployment(), tenant({LAST_HANDLED: json.dumps({"spec": {}})})):
        body = kopf.Body(obj)
        assert storage.build(body=body) == storage.fetch(body=body) == {}
        patch = kopf.Patch()
        storage.store(body=body, patch=patch, essence=kopf.BodyEssence(spec={"a": 1}))
        assert not patch


def test_the_operator_settings_use_it() -> None:
    settings = kopf.OperatorSettings()
    configure_kopf(settings, RunOptions(settings=OperatorSettings(), purge=PurgePolicy()))
    assert isinstance(settings.persistence.diffbase_storage, NoDiffBase)
    assert settings.persistence.finalizer == "swg.dev/purge"


def test_a_purge_that_waits_is_logged_as_waiting_not_as_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A cancelled tenant waits for its purge date with a `TemporaryError` per check (hourly for
    up to 90 days): kopf would log each as an ERROR "failed temporarily" (535 such lines in a
    chaos run whose purges wait seconds). A real failure of the purge stays an ERROR."""
    settings = kopf.OperatorSettings()
    configure_kopf(settings, RunOptions(settings=OperatorSettings(), purge=PurgePolicy()))
    (purge,) = registered()._changing.get_all_handlers()
    logger = ObjectLogger(body=kopf.Body(tenant({})), settings=settings)
    waits = waiting(NotYet(3600.0, "WaitingForDeadline"))
    failure = kopf.TemporaryError("Transient API error: 503 Service Unavailable", delay=5)
    caplog.set_level(logging.DEBUG, logger="kopf.objects")
    for error in (waits, failure):  # as kopf's handler execution logs a TemporaryError
        logger.error(f"{purge} failed temporarily: {error}")
    waited, failed = caplog.records
    assert (waited.levelname, waited.getMessage()) == (
        "INFO",
        "Handler 'purge' waits: WaitingForDeadline; next check in 3600s",
    )
    assert waits.delay == 3600.0
    assert (failed.levelname, failed.levelno) == ("ERROR", logging.ERROR)
    assert "failed temporarily: Transient API error" in failed.getMessage()
