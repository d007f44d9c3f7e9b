"""`swg-operator run`: start the operator against the current kubeconfig or in-cluster config."""

from __future__ import annotations

import argparse
import asyncio
import datetime
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from swg_operator.commands.logformat import LOG_FORMATS, configure_logging
from swg_operator.election import Timing

if TYPE_CHECKING:
    from swg_operator.handlers import RunOptions

logger = logging.getLogger("swg_operator.run")

DEFAULT_METRICS = "127.0.0.1:8080"


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "run",
        help="Run the operator (kopf) against the current kubeconfig or in-cluster config.",
        description="Run the operator: reconcile every SecureWebGateway in the cluster.",
    )
    parser.add_argument(
        "--settings",
        type=Path,
        help="YAML/JSON file of operator settings (Helm values' `operator` block).",
    )
    parser.add_argument(
        "--operator-namespace",
        default=os.environ.get("SWG_OPERATOR_NAMESPACE"),
        help="Namespace of the operator: URL catalogue and purge receipts "
        "(default: $SWG_OPERATOR_NAMESPACE or the settings file's).",
    )
    election = parser.add_mutually_exclusive_group()
    election.add_argument(
        "--lease",
        metavar="NAME",
        default=os.environ.get("SWG_LEADER_LEASE") or None,
        help="Leader election on coordination.k8s.io Lease NAME in the operator namespace: "
        "any number of replicas, one reconciles, the others stand by (not ready) and take over "
        "when its Lease expires (default: $SWG_LEADER_LEASE).",
    )
    election.add_argument(
        "--standalone",
        action="store_true",
        help="No leader election (the default without --lease): exactly one process may run.",
    )
    parser.add_argument(
        "--lease-identity",
        default=os.environ.get("POD_ID") or f"{socket.gethostname()}-{os.getpid()}",
        help="This process's name in the Lease's holderIdentity (default: $POD_ID, the pod "
        "name in the chart, else host-pid).",
    )
    timing = Timing()
    parser.add_argument(
        "--lease-duration",
        type=float,
        default=timing.lease_duration,
        help="Seconds a Lease holds without renewal: a standby takes over this long after it "
        f"last saw the Lease change (default {timing.lease_duration:g}).",
    )
    parser.add_argument(
        "--lease-renew-seconds",
        type=float,
        default=timing.renew_every,
        help=f"The leader renews its Lease this often (default {timing.renew_every:g}).",
    )
    parser.add_argument(
        "--lease-renew-deadline",
        type=float,
        default=timing.renew_deadline,
        help="The leader exits when it could not renew for this long, before a standby may "
        f"take over (default {timing.renew_deadline:g}; less than --lease-duration).",
    )
    parser.add_argument(
        "--lease-poll-seconds",
        type=float,
        default=timing.poll_every,
        help=f"A standby reads the Lease this often (default {timing.poll_every:g}).",
    )
    parser.add_argument(
        "--metrics-address",
        default=os.environ.get("SWG_METRICS_ADDRESS", DEFAULT_METRICS),
        help=f"host:port of /metrics and /healthz (default {DEFAULT_METRICS}).",
    )
    parser.add_argument(
        "--resync-seconds",
        type=float,
        default=900.0,
        help="Full re-reconcile of every tenant this often, 0 to disable (reads only when "
        "nothing drifted; default 900).",
    )
    parser.add_argument(
        "--secret-recheck-seconds",
        type=float,
        default=600.0,
        help="Read a tenant's HTTPS-inspection CA Secret again after this long even when "
        "nothing it was judged on changed (Secrets are not watched; default 600).",
    )
    parser.add_argument(
        "--purge-clock",
        choices=("server", "local"),
        default=os.environ.get("SWG_PURGE_CLOCK", "server"),
        help="Clock that decides when a purge is due: the API server's (default) or, explicitly, "
        "this process's own plus --purge-clock-margin (for tests under a shifted clock).",
    )
    parser.add_argument(
        "--purge-clock-margin",
        type=float,
        default=600.0,
        help="Seconds added to purgeAt when the local clock decides (default 600).",
    )
    parser.add_argument(
        "--purge-recheck-seconds",
        type=float,
        default=3600.0,
        help="Longest wait between two checks of a cancelled tenant (legal hold lifted, clock "
        "corrected); default 3600.",
    )
    parser.add_argument(
        "--watch-server-timeout",
        type=int,
        default=300,
        help="Seconds after which the API server ends each watch (kopf re-lists and "
        "re-watches); default 300.",
    )
    parser.add_argument(
        "--watch-client-timeout",
        type=int,
        default=None,
        help="Seconds after which the operator drops a watch the server did not end (a hung "
        "connection); default: the server timeout plus 30.",
    )
    parser.add_argument("--verbose", action="store_true", help="Debug logging.")
    parser.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        default=os.environ.get("SWG_LOG_FORMAT", "text"),
        help="text (default): kopf's text lines; json: one JSON object per line with `tenant` "
        "and `generation` fields (default: $SWG_LOG_FORMAT or text).",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    # Imported here so that other subcommands start without kopf and the cluster client.
    import kopf
    from pydantic import ValidationError

    from swg_operator.api import OperatorSettings
    from swg_operator.commands.errors import file_error
    from swg_operator.handlers import RunOptions, configure_kopf, register
    from swg_operator.reconcile.context import PurgePolicy
    from swg_operator.reconcile.lifecycle import ClockMode

    raw: dict[str, Any] = {}
    if args.settings is not None:
        try:
            raw = yaml.safe_load(args.settings.read_text()) or {}
        except OSError as exc:
            print(
                f"swg-operator run: {file_error(exc, 'could not be read (--settings)')}",
                file=sys.stderr,
            )
            return 2
        except yaml.YAMLError as exc:
            print(f"swg-operator run: {args.settings}: not valid YAML: {exc}", file=sys.stderr)
            return 2
        if not isinstance(raw, dict):
            print(
                f"swg-operator run: {args.settings}: expected a mapping of operator settings "
                "(the chart's settings.json)",
                file=sys.stderr,
            )
            return 2
    if args.operator_namespace:
        raw["operatorNamespace"] = args.operator_namespace
    try:
        settings = OperatorSettings.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}" for error in exc.errors()
        )
        source = args.settings or "--operator-namespace"
        print(f"swg-operator run: {source}: invalid operator settings: {problems}", file=sys.stderr)
        return 2
    host, _, port = args.metrics_address.rpartition(":")
    options = RunOptions(
        settings=settings,
        purge=PurgePolicy(
            clock=ClockMode(args.purge_clock),
            local_margin=datetime.timedelta(seconds=args.purge_clock_margin),
            max_wait=args.purge_recheck_seconds,
        ),
        metrics_host=host or "127.0.0.1",
        metrics_port=int(port),
        resync_seconds=args.resync_seconds,
        secret_recheck_seconds=args.secret_recheck_seconds,
        watch_server_timeout=args.watch_server_timeout,
        watch_client_timeout=args.watch_client_timeout
        if args.watch_client_timeout is not None
        else args.watch_server_timeout + 30,
    )
    timing = Timing(
        lease_duration=args.lease_duration,
        renew_every=args.lease_renew_seconds,
        renew_deadline=args.lease_renew_deadline,
        poll_every=args.lease_poll_seconds,
    )
    configure_logging(args.log_format, verbose=args.verbose)
    logging.getLogger("swg_operator").setLevel(logging.DEBUG if args.verbose else logging.INFO)
    if not args.verbose:
        # kopf logs every watch-event handler call at INFO ("Handler 'tenant' succeeded"):
        # our own log lines say what changed; kopf's warnings and errors still show.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    registry = kopf.OperatorRegistry()
    register(registry, options)
    kopf_settings = kopf.OperatorSettings()
    configure_kopf(kopf_settings, options)
    lease = None if args.standalone else args.lease
    kopf_ready = asyncio.Event()

    def start_kopf() -> Coroutine[Any, Any, None]:
        # Standalone: no kopf peering (instances of equal priority would all pause); the Lease
        # decides which process runs kopf at all.
        return kopf.operator(
            registry=registry,
            settings=kopf_settings,
            clusterwide=True,
            standalone=True,
            ready_flag=kopf_ready,
        )

    asyncio.run(
        _operate(
            options,
            start_kopf,
            kopf_ready,
            lease=lease,
            identity=args.lease_identity,
            timing=timing,
        )
    )
    return 0


async def _operate(
    options: RunOptions,
    start_kopf: Callable[[], Coroutine[Any, Any, None]],
    kopf_ready: asyncio.Event,
    *,
    lease: str | None,
    identity: str,
    timing: Timing,
) -> None:
    """Serve /healthz, /readyz and /metrics; stand by until this process leads (with `lease`);
    run kopf (`start_kopf()`) while it leads; release the Lease when kopf stops."""
    from swg_operator import metrics
    from swg_operator.election import Elector
    from swg_operator.kube.lease import HttpLeaseStore

    heartbeat = metrics.Heartbeat()
    beating = asyncio.create_task(heartbeat.run())
    leading = asyncio.Event()
    metrics.LEADER.set(0)

    def ready() -> bool:
        return leading.is_set() and kopf_ready.is_set()

    endpoint = await metrics.serve(
        options.metrics_host, options.metrics_port, heartbeat, ready=ready
    )
    store = None
    try:
        if lease is None:
            leading.set()
            metrics.LEADER.set(1)
            await start_kopf()
            return
        store = HttpLeaseStore(lease, options.settings.operator_namespace)

        def changed(now_leading: bool) -> None:
            metrics.LEADER.set(1 if now_leading else 0)
            (leading.set if now_leading else leading.clear)()

        elector = Elector(
            store,
            identity,
            timing=timing,
            clock=time.monotonic,
            wall_clock=lambda: datetime.datetime.now(datetime.UTC),
            on_change=changed,
        )
        logger.info(
            "Leader election on Lease %s/%s as %s (duration %gs, renew every %gs)",
            options.settings.operator_namespace,
            lease,
            identity,
            timing.lease_duration,
            timing.renew_every,
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)  # kopf installs its own once it runs
        acquiring = asyncio.create_task(elector.acquire())
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({acquiring, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not acquiring.done():
            acquiring.cancel()
            logger.info("Stopped while standing by")
            return
        stopping.cancel()
        working = asyncio.create_task(start_kopf())
        holding = asyncio.create_task(elector.hold())
        await asyncio.wait({working, holding}, return_when=asyncio.FIRST_COMPLETED)
        if holding.done():
            # Another process may lead already: stop writing now, whatever kopf is doing. The
            # pod's container restarts and stands by.
            logger.critical("Exiting at once: this process no longer holds the leader Lease")
            logging.shutdown()
            sys.stdout.flush()
            os._exit(1)
        holding.cancel()
        try:
            await working
        finally:
            await elector.release()
    finally:
        beating.cancel()
        await endpoint.cleanup()
        if store is not None:
            await store.close()
