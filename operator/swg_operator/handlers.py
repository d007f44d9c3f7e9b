"""kopf wiring only: which events call the one reconcile, and kopf's settings.

Create, update, resume and the periodic resync call `reconcile()`; deletion calls
`cancel_and_purge()`; events on the tenant's labelled children (drift, Deployment availability)
and on the URL catalogue's ConfigMaps queue a re-reconcile of the tenant concerned. Every choice
of kopf setting is explained in docs/operator.md.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import kopf

from swg_operator.api import GROUP, KIND, PLURAL, VERSION, OperatorSettings
from swg_operator.catalogue import CATEGORY_LABEL
from swg_operator.kube import KubeApiError
from swg_operator.kube.http import HttpKubeApi, login
from swg_operator.kube.kinds import OWNED_KINDS, TENANT
from swg_operator.labels import MANAGED_BY, MANAGED_BY_KEY, TENANT_KEY
from swg_operator.naming import tenant_label_value
from swg_operator.reconcile.loop import Context, PurgePolicy, TransientError, reconcile
from swg_operator.reconcile.purge import PURGE_PHASES, NotYet, cancel_and_purge
from swg_operator.reconcile.queue import RetryLater, TenantQueue
from swg_operator.reconcile.status import read_status
from swg_operator.render.checks import wire_category_references

logger = logging.getLogger("swg_operator.handlers")

FINALIZER = "swg.dev/purge"
ANNOTATION_PREFIX = "swg.dev"
SWG = (GROUP, VERSION, PLURAL)
BACKOFF_CAP = 300.0


@dataclass(frozen=True)
class RunOptions:
    """What `swg-operator run` decided; see `commands/run.py` for the flags."""

    settings: OperatorSettings
    purge: PurgePolicy
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 8080
    resync_seconds: float = 900.0
    handler_retries: int = 10
    watch_server_timeout: int = 300
    watch_client_timeout: int = 330
    event_level: int = logging.WARNING


def backoff(retry: int) -> float:
    """Exponential backoff for transient errors: 2, 4, 8 ... seconds, capped at 5 minutes."""
    return min(BACKOFF_CAP, 2.0 ** (retry + 1))


def configure_kopf(settings: kopf.OperatorSettings, options: RunOptions) -> None:
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
        prefix=ANNOTATION_PREFIX
    )
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=ANNOTATION_PREFIX, key="last-handled-configuration"
    )
    settings.watching.server_timeout = options.watch_server_timeout
    settings.watching.client_timeout = options.watch_client_timeout
    settings.watching.connect_timeout = 30
    settings.networking.request_timeout = 60
    settings.posting.level = options.event_level
    settings.batching.error_delays = (1, 2, 5, 10, 30, 60)


def register(registry: kopf.OperatorRegistry, options: RunOptions) -> None:
    """Register every handler of the operator with `options` into `registry`."""
    state: dict[str, Any] = {}

    def ctx() -> Context:
        context: Context = state["ctx"]
        return context

    @kopf.on.startup(registry=registry, id="startup")
    async def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
        configure_kopf(settings, options)
        kube = HttpKubeApi(login())
        state["ctx"] = Context(kube=kube, settings=options.settings, purge=options.purge)
        state["queue"] = TenantQueue(requeued)
        logger.info(
            "Started the operator: finalizer %s, purge clock %s, resync every %.0fs",
            FINALIZER,
            options.purge.clock,
            options.resync_seconds,
        )
        if options.purge.clock != "server":
            logger.warning(
                "Trusted the local clock for purge deadlines (--purge-clock=local): a clock "
                "ahead by more than %s can purge early",
                options.purge.local_margin,
            )

    @kopf.on.cleanup(registry=registry, id="cleanup")
    async def cleanup(**_: Any) -> None:
        await state["queue"].close()
        await state["ctx"].kube.close()

    @kopf.on.login(registry=registry, id="login")
    def credentials(**_: Any) -> kopf.ConnectionInfo:
        return login()

    @kopf.index(*SWG, registry=registry, id="tenant_names")
    def tenant_names(name: str, **_: Any) -> dict[str, str]:
        return {tenant_label_value(name): name}

    @kopf.index(*SWG, registry=registry, id="tenants_by_category")
    def tenants_by_category(name: str, spec: Mapping[str, Any], **_: Any) -> dict[str, str]:
        return {category: name for category in _categories(spec)}

    async def run(body: Mapping[str, Any], retry: int) -> None:
        name = body["metadata"]["name"]
        async with ctx().lock(name):
            try:
                await reconcile(body, ctx=ctx())
            except TransientError as exc:
                raise kopf.TemporaryError(
                    f"Transient API error: {exc}", delay=backoff(retry)
                ) from exc
            except Exception as exc:  # a bug: logged loudly and Degraded by reconcile()
                raise kopf.TemporaryError(
                    f"Failed ({type(exc).__name__}); retrying", delay=backoff(retry + 3)
                ) from exc

    @kopf.on.resume(*SWG, registry=registry, id="reconcile", retries=options.handler_retries)
    @kopf.on.create(*SWG, registry=registry, id="reconcile", retries=options.handler_retries)
    @kopf.on.update(*SWG, registry=registry, id="reconcile", retries=options.handler_retries)
    async def on_change(body: kopf.Body, retry: int, **_: Any) -> None:
        await run(body, retry)

    if options.resync_seconds > 0:

        @kopf.timer(
            *SWG,
            registry=registry,
            interval=options.resync_seconds,
            initial_delay=options.resync_seconds,
            id="resync",
        )
        async def resync(body: kopf.Body, **_: Any) -> None:
            if not body["metadata"].get("deletionTimestamp"):
                state["queue"].request(body["metadata"]["name"])

    # Unlimited retries: giving up would keep the finalizer forever; the purge must complete.
    @kopf.on.delete(*SWG, registry=registry, id="purge", retries=None)
    async def on_delete(body: kopf.Body, retry: int, **_: Any) -> None:
        name = body["metadata"]["name"]
        async with ctx().lock(name):
            try:
                await cancel_and_purge(body, ctx=ctx())
            except NotYet as exc:
                raise kopf.TemporaryError(str(exc), delay=exc.delay) from exc
            except TransientError as exc:
                raise kopf.TemporaryError(
                    f"Transient API error: {exc}", delay=backoff(retry)
                ) from exc

    async def requeued(name: str) -> None:
        async with ctx().lock(name):
            try:
                body = await ctx().kube.get(TENANT, name)
            except KubeApiError as exc:
                raise RetryLater(str(exc)) from exc
            if body is None:
                return
            if body["metadata"].get("deletionTimestamp"):
                status = read_status(body.get("status"))
                if status is not None and status.phase in PURGE_PHASES:
                    return  # the purge owns the tenant now: never re-create its objects
            try:
                await reconcile(body, ctx=ctx())
            except TransientError as exc:
                raise RetryLater(str(exc)) from exc

    async def child_event(**kwargs: Any) -> None:
        if kwargs["type"] is None:
            return  # the initial listing: resume handlers cover existing tenants
        labels: Mapping[str, str] = kwargs["labels"]
        names: kopf.Index[str, str] = kwargs["tenant_names"]
        for name in names.get(labels.get(TENANT_KEY, ""), ()):
            state["queue"].request(name)

    owned: dict[str, Any] = {
        MANAGED_BY_KEY: MANAGED_BY,
        TENANT_KEY: kopf.PRESENT,
    }
    for kind in OWNED_KINDS:  # never Secrets (see kube.kinds)
        group, _, version = kind.api_version.rpartition("/")
        kopf.on.event(
            group, version, kind.plural, registry=registry, labels=owned, id=f"drift-{kind.plural}"
        )(child_event)

    async def category_event(**kwargs: Any) -> None:
        if kwargs["type"] is None or kwargs["namespace"] != options.settings.operator_namespace:
            return
        category = kwargs["labels"].get(CATEGORY_LABEL, "")
        names: kopf.Index[str, str] = kwargs["tenants_by_category"]
        for name in names.get(category, ()):
            logger.info("Queued %s %s: URL category %s changed", KIND, name, category)
            state["queue"].request(name)

    catalogue_labels: dict[str, Any] = {CATEGORY_LABEL: kopf.PRESENT}
    kopf.on.event(
        "", "v1", "configmaps", registry=registry, labels=catalogue_labels, id="catalogue"
    )(category_event)


def _categories(spec: Mapping[str, Any]) -> set[str]:
    return {name for _, name in wire_category_references(spec)}
