"""kopf wiring only: which events call the one reconcile, and kopf's settings.

Every reconcile runs from the operator's own queue (`reconcile.queue`: bounded, new tenants
first, backoff with jitter): a tenant's events (create, update, the first listing at start), its
labelled children's (drift, Deployment availability), the URL catalogue's ConfigMaps and the
periodic resync ask for one; the operator's own writes (the resourceVersion it got back) ask for
none. Deletion calls `cancel_and_purge()` through kopf's finalizer handling. kopf keeps the
owned kinds and the operator namespace's ConfigMaps in in-memory indexes, which feed the
reconcile's `WatchCache`: a reconcile of an unchanged tenant makes no request. Every choice of
kopf setting is explained in docs/operator.md.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import kopf

from swg_operator.api import (
    API_VERSION,
    FINALIZER,
    GROUP,
    KIND,
    PLURAL,
    VERSION,
    OperatorSettings,
)
from swg_operator.catalogue import CATEGORY_LABEL
from swg_operator.kube import KubeApiError
from swg_operator.kube.cache import Packed, WatchCache, pack
from swg_operator.kube.http import POOL_SIZE, HttpKubeApi, login
from swg_operator.kube.informer import Informer
from swg_operator.kube.kinds import OWNED_KINDS
from swg_operator.labels import MANAGED_BY, MANAGED_BY_KEY, TENANT_KEY, label_of
from swg_operator.naming import tenant_label_value
from swg_operator.notices import Dispatcher, MailError, RetryPolicy, load_mailer
from swg_operator.receipts import ReceiptError, signing_key
from swg_operator.reconcile.context import Context, PurgePolicy, TransientError, utcnow
from swg_operator.reconcile.loop import reconcile
from swg_operator.reconcile.purge import PURGE_PHASES, NotYet, cancel_and_purge
from swg_operator.reconcile.queue import RetryLater, TenantQueue, backoff
from swg_operator.reconcile.secret_checks import SecretChecks
from swg_operator.reconcile.status import read_status
from swg_operator.render.checks import wire_category_references

logger = logging.getLogger("swg_operator.handlers")

ANNOTATION_PREFIX = "swg.dev"
SWG = (GROUP, VERSION, PLURAL)
SETTLE_SECONDS = 0.5  # a burst of child events (a rollout) becomes one reconcile
INFORMED_KINDS = OWNED_KINDS  # never Secrets (see kube.kinds)
OWNED_SELECTOR = f"{MANAGED_BY_KEY}={MANAGED_BY},{TENANT_KEY}"
RECONCILE_WORKERS = POOL_SIZE - 4  # reconciles in flight; the purge and Events keep the rest


@dataclass(frozen=True)
class RunOptions:
    """What `swg-operator run` decided; see `commands/run.py` for the flags."""

    settings: OperatorSettings
    purge: PurgePolicy
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 8080
    resync_seconds: float = 900.0
    secret_recheck_seconds: float = 600.0
    watch_server_timeout: int = 300
    watch_client_timeout: int = 330
    event_level: int = logging.WARNING


class NoDiffBase(kopf.DiffBaseStorage):
    """No last-handled state: the operator's handlers take the whole object (an event) or
    none of kopf's diffs (the purge), so kopf's diff-base, an annotation patch of every tenant
    once created and again after every spec change, served only the purge deadline, which now
    reads the days from the status (`reconcile.lifecycle`). The essence is the same empty one
    before and after every event, so kopf sees no change to handle and stores nothing; nor does
    it deep-copy every object of every watched kind to build one."""

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> kopf.BodyEssence:
        return kopf.BodyEssence()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return kopf.BodyEssence()

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        return None


# Begins the message of the `kopf.TemporaryError` by which the purge waits (`waiting`).
WAITS: Final = "waits: "


def waiting(exc: NotYet) -> kopf.TemporaryError:
    """The purge is not done and waits (its date, a legal hold, its namespace going): kopf
    retries the handler after `exc.delay`; `WaitingIsNoFailure` logs it as waiting."""
    return kopf.TemporaryError(f"{WAITS}{exc}", delay=exc.delay)


class WaitingIsNoFailure(logging.Filter):
    """kopf logs a handler's `TemporaryError` as an ERROR ("failed temporarily"). A cancelled
    tenant waiting for its purge date raises one at every check (hourly for up to 90 days), an
    ERROR line that is no failure: logged at INFO as waiting instead. A real failure (a
    transient API error) stays an ERROR."""

    def filter(self, record: logging.LogRecord) -> bool:
        head, marked, rest = record.getMessage().partition(f" failed temporarily: {WAITS}")
        if marked:
            record.msg, record.args = f"{head} waits: {rest}", ()
            record.levelno, record.levelname = logging.INFO, logging.getLevelName(logging.INFO)
        return True


def configure_kopf(settings: kopf.OperatorSettings, options: RunOptions) -> None:
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
        prefix=ANNOTATION_PREFIX
    )
    settings.persistence.diffbase_storage = NoDiffBase()
    settings.watching.server_timeout = options.watch_server_timeout
    settings.watching.client_timeout = options.watch_client_timeout
    settings.watching.connect_timeout = 30
    settings.networking.request_timeout = 60
    settings.posting.level = options.event_level
    settings.queueing.error_delays = (1, 2, 5, 10, 30, 60)
    objects = logging.getLogger("kopf.objects")  # kopf's per-object log, posted as Events
    if not any(isinstance(f, WaitingIsNoFailure) for f in objects.filters):
        objects.addFilter(WaitingIsNoFailure())


def register(registry: kopf.OperatorRegistry, options: RunOptions) -> None:
    """Register every handler of the operator with `options` into `registry`."""
    state: dict[str, Any] = {}

    def ctx() -> Context:
        context: Context = state["ctx"]
        return context

    def queue() -> TenantQueue:
        tenant_queue: TenantQueue = state["queue"]
        return tenant_queue

    @kopf.on.startup(registry=registry, id="startup")
    async def startup(settings: kopf.OperatorSettings, **kwargs: Any) -> None:
        configure_kopf(settings, options)
        platform: kopf.Index[str, Packed] = kwargs["platform_config_maps"]
        state["tenants"] = kwargs["tenant_bodies"]
        state["tenant_names"] = kwargs["tenant_names"]
        kube = state["kube"] = HttpKubeApi(login())
        state["queue"] = TenantQueue(requeued, workers=RECONCILE_WORKERS)
        informers = [
            Informer(
                kube, kind, selector=OWNED_SELECTOR, index_label=TENANT_KEY, on_event=owned_event
            )
            for kind in INFORMED_KINDS
        ]
        state["informers"] = [
            asyncio.create_task(informer.run(), name=f"watch-{informer.kind.plural}")
            for informer in informers
        ]
        state["synced"] = [informer.synced for informer in informers]
        cache = WatchCache(
            children_of=lambda label: [obj for i in informers for obj in i.by_label(label)],
            config_maps_of=lambda: [obj for store in platform.values() for obj in store],
        )
        recheck = datetime.timedelta(seconds=options.secret_recheck_seconds)
        state["ctx"] = Context(
            kube=kube,
            settings=options.settings,
            purge=options.purge,
            cache=cache,
            secret_checks=SecretChecks(recheck=recheck),
        )
        # kopf starts on the leader only (`commands.run`): one signer, one outbox.
        await start_notices(state, kube, options.settings)
        if options.resync_seconds > 0:
            state["resync"] = asyncio.create_task(
                queue().resync(options.resync_seconds, lambda: list(state["tenants"])),
                name="resync",
            )
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

    async def synced() -> None:
        """Until every owned kind is listed, the cache is incomplete: nothing may be judged
        missing from it."""
        for listed in state["synced"]:
            await listed.wait()

    @kopf.on.cleanup(registry=registry, id="cleanup")
    async def cleanup(**_: Any) -> None:
        for task in ("resync", "mail"):
            if task in state:
                state[task].cancel()
        for task in state.get("informers", ()):
            task.cancel()
        await queue().close()
        await state["kube"].close()

    @kopf.on.login(registry=registry, id="login")
    def credentials(**_: Any) -> kopf.ConnectionInfo:
        return login()

    @kopf.index(*SWG, registry=registry, id="tenant_bodies")
    async def tenant_bodies(name: str, body: kopf.Body, **_: Any) -> dict[str, Packed]:
        return {name: pack(body, api_version=API_VERSION, kind=KIND)}

    @kopf.index(*SWG, registry=registry, id="tenant_names")
    async def tenant_names(name: str, **_: Any) -> dict[str, str]:
        return {tenant_label_value(name): name}

    @kopf.index(*SWG, registry=registry, id="tenants_by_category")
    async def tenants_by_category(name: str, spec: Mapping[str, Any], **_: Any) -> dict[str, str]:
        return {category: name for category in _categories(spec)}

    @kopf.on.event(*SWG, registry=registry, id="tenant")
    async def tenant_event(body: kopf.Body, type: str | None, **_: Any) -> None:
        """Every change of a tenant but its deletion (the purge's) and the operator's own
        status writes asks for a reconcile; a new tenant's or a changed spec's goes first."""
        meta = body["metadata"]
        if type == "DELETED":
            ctx().forget_tenant(meta["name"])
            return
        if meta.get("deletionTimestamp") or ctx().is_echo(body):
            return
        status = body.get("status") or {}
        first = status.get("observedGeneration") != meta.get("generation")
        queue().request(meta["name"], first=first)

    # Unlimited retries: giving up would keep the finalizer forever; the purge must complete.
    @kopf.on.delete(*SWG, registry=registry, id="purge", retries=None)
    async def on_delete(body: kopf.Body, retry: int, **_: Any) -> None:
        name = body["metadata"]["name"]
        await synced()
        async with ctx().lock(name):
            try:
                await cancel_and_purge(body, ctx=ctx())
            except NotYet as exc:
                raise waiting(exc) from exc
            except TransientError as exc:
                delay = max(backoff(retry + 1), exc.retry_after or 0.0)
                raise kopf.TemporaryError(f"Transient API error: {exc}", delay=delay) from exc

    async def requeued(name: str) -> None:
        store: Iterable[Packed] = state["tenants"].get(name, ())
        packed = next(iter(store), None)
        if packed is None:
            return  # deleted meanwhile
        body = packed.unpack()
        await synced()
        if body["metadata"].get("deletionTimestamp"):
            status = read_status(body.get("status"))
            if status is not None and status.phase in PURGE_PHASES:
                return  # the purge owns the tenant now: never re-create its objects
        async with ctx().lock(name):
            try:
                await reconcile(body, ctx=ctx())
            except TransientError as exc:
                raise RetryLater(str(exc), retry_after=exc.retry_after) from exc

    def owned_event(type: str | None, body: Mapping[str, Any]) -> None:
        """An event of one of the tenants' objects: the cache learns the operator's own writes
        are reported; any other change (drift, a rollout's progress, a deletion) asks for a
        reconcile of its tenant, a burst of them for one."""
        cache = ctx().cache
        if cache is not None:
            cache.saw(body, deleted=type == "DELETED")
        if type is None or ctx().is_echo(body):
            return  # the first listing (the tenants' own events cover it), or an echo
        names: kopf.Index[str, str] = state["tenant_names"]
        for name in names.get(label_of(body, TENANT_KEY), ()):
            queue().request(name, after=SETTLE_SECONDS)

    def in_operator_namespace(namespace: str | None, **_: Any) -> bool:
        return namespace == options.settings.operator_namespace

    @kopf.index(
        "",
        "v1",
        "configmaps",
        registry=registry,
        when=in_operator_namespace,
        id="platform_config_maps",
    )
    async def platform_config_maps(name: str, body: kopf.Body, **_: Any) -> dict[str, Packed]:
        return {name: pack(body, api_version="v1", kind="ConfigMap")}

    async def category_event(**kwargs: Any) -> None:
        if kwargs["type"] is None or kwargs["namespace"] != options.settings.operator_namespace:
            return
        category = kwargs["labels"].get(CATEGORY_LABEL, "")
        names: kopf.Index[str, str] = kwargs["tenants_by_category"]
        for name in names.get(category, ()):
            logger.info("Queued %s %s: URL category %s changed", KIND, name, category)
            queue().request(name)

    catalogue_labels: dict[str, Any] = {CATEGORY_LABEL: kopf.PRESENT}
    kopf.on.event(
        "", "v1", "configmaps", registry=registry, labels=catalogue_labels, id="catalogue"
    )(category_event)


async def start_notices(
    state: dict[str, Any], kube: HttpKubeApi, settings: OperatorSettings
) -> None:
    """The receipts' signing key into the context, and the outbox's task when a relay is set.
    A key or relay that cannot be loaded is logged: receipts go unsigned, notices are kept
    unmailed (the outbox of the next start mails them), the operator runs."""
    context: Context = state["ctx"]
    try:
        context.receipt_key = await signing_key(
            kube, secret=settings.receipts.signing_key_secret, namespace=settings.operator_namespace
        )
    except (ReceiptError, KubeApiError) as exc:
        logger.error("Failed to load the purge receipts' signing key: %s", exc)
    try:
        mailer = await load_mailer(kube, settings)
    except (MailError, KubeApiError) as exc:
        logger.error("Failed to set up the notices' mail relay: %s", exc)
        return
    if mailer is None:
        logger.info("Kept notices without mail: no relay is set (mail.host)")
        return
    dispatcher = Dispatcher(
        kube, mailer, clock=utcnow, policy=RetryPolicy.from_settings(settings.mail)
    )
    context.wake_mail = dispatcher.wake
    state["mail"] = asyncio.create_task(dispatcher.run(), name="mail")
    logger.info("Started the notices' outbox: relay %s:%d", settings.mail.host, settings.mail.port)


def _categories(spec: Mapping[str, Any]) -> set[str]:
    return {name for _, name in wire_category_references(spec)}
