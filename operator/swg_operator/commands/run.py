"""`swg-operator run`: start the operator against the current kubeconfig or in-cluster config."""

from __future__ import annotations

import argparse
import datetime
import logging
import os
from pathlib import Path
from typing import Any

import yaml

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
    peering = parser.add_mutually_exclusive_group()
    peering.add_argument(
        "--peering",
        metavar="NAME",
        help="Use kopf peering object NAME (ClusterKopfPeering) so a second replica stays idle.",
    )
    peering.add_argument(
        "--standalone",
        action="store_true",
        help="No peering (the default): exactly one replica must run (Deployment: Recreate).",
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
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    # Imported here so that other subcommands start without kopf and the cluster client.
    import kopf

    from swg_operator.api import OperatorSettings
    from swg_operator.handlers import RunOptions, configure_kopf, register
    from swg_operator.reconcile.lifecycle import ClockMode
    from swg_operator.reconcile.loop import PurgePolicy

    raw: dict[str, Any] = {}
    if args.settings is not None:
        raw = yaml.safe_load(args.settings.read_text()) or {}
    if args.operator_namespace:
        raw["operatorNamespace"] = args.operator_namespace
    settings = OperatorSettings.model_validate(raw)
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
        watch_server_timeout=args.watch_server_timeout,
        watch_client_timeout=args.watch_client_timeout
        if args.watch_client_timeout is not None
        else args.watch_server_timeout + 30,
    )
    kopf.configure(verbose=args.verbose, log_format=kopf.LogFormat.FULL)
    logging.getLogger("swg_operator").setLevel(logging.DEBUG if args.verbose else logging.INFO)
    if not args.verbose:
        # kopf logs every watch-event handler call at INFO ("Handler 'drift-...' succeeded"):
        # our own log lines say what changed; kopf's warnings and errors still show.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    registry = kopf.OperatorRegistry()
    register(registry, options)
    kopf_settings = kopf.OperatorSettings()
    configure_kopf(kopf_settings, options)
    kopf.run(
        registry=registry,
        settings=kopf_settings,
        clusterwide=True,
        standalone=args.peering is None,
        peering_name=args.peering,
    )
    return 0
