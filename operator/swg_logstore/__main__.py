"""`python -m swg_logstore serve|ship`: the log store and its shipping sidecar.

    serve  [--root DIR] --tenant NAME --service-code CODE [--retention-days N] [--legal-hold]
           [--time-zone ZONE]
           [--host 0.0.0.0] [--http-port 8080] [--ingest-port 5140] [--metrics-port 9464]
           [--log-format text|json]
    ship   --store http://logstore:5140 --source KIND[=PATH] ... [--state-dir DIR]
           [--tenant NAME] [--log-format text|json]

Every option has an environment variable, so the pod spec can use either:
SWG_STATE_DIR (the volume; records go to $SWG_STATE_DIR/logs, or SWG_LOGSTORE_ROOT),
SWG_TENANT, SWG_SERVICE_CODE, SWG_LOG_RETENTION_DAYS, SWG_LOG_LEGAL_HOLD (`true`: expire nothing),
SWG_LOG_TIME_ZONE (IANA zone: days end at its midnight; UTC by default),
SWG_HTTP_PORT, SWG_INGEST_PORT, SWG_METRICS_PORT;
SWG_LOGSTORE_URL, SWG_SHIP_SOURCES (`KIND[=PATH],...`), SWG_SHIPPER_STATE_DIR;
both: SWG_LOG_FORMAT (`text`, the default, or `json`: the programs' own log lines, `logs.py`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from swg_logstore.formats import SHIPPER_STATE_DIR, SOURCE_PATHS, SourceKind
from swg_logstore.logs import FORMATS, configure
from swg_logstore.retention import MAX_RETENTION_DAYS, MIN_RETENTION_DAYS

# The image contract shared with render.context (tests/test_logstore_plugin.py checks it).
STATE_DIR = "/var/lib/swg"
HTTP_PORT = 8080
INGEST_PORT = 5140
METRICS_PORT = 9464


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(name, default)


def _retention(text: str) -> int:
    value = int(text)
    if not MIN_RETENTION_DAYS <= value <= MAX_RETENTION_DAYS:
        raise argparse.ArgumentTypeError(
            f"{value} is outside {MIN_RETENTION_DAYS}..{MAX_RETENTION_DAYS}"
        )
    return value


def _source(text: str) -> tuple[SourceKind, Path]:
    kind, sep, path = text.partition("=")
    try:
        source_kind = SourceKind(kind)
    except ValueError:
        choices = ", ".join(k.value for k in SourceKind)
        raise argparse.ArgumentTypeError(f"{kind!r}: expected one of {choices}") from None
    return source_kind, Path(path if sep else SOURCE_PATHS[source_kind])


def _log_format(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--log-format",
        choices=FORMATS,
        default=_env("SWG_LOG_FORMAT") or "text",
        help="this program's own log lines on stderr: text (default) or json",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m swg_logstore")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the tenant's log store")
    _log_format(serve)
    state_dir = _env("SWG_STATE_DIR", STATE_DIR) or STATE_DIR
    root = _env("SWG_LOGSTORE_ROOT") or f"{state_dir}/logs"
    serve.add_argument("--root", type=Path, default=Path(root))
    serve.add_argument("--tenant", default=_env("SWG_TENANT"), required=_env("SWG_TENANT") is None)
    serve.add_argument(
        "--service-code",
        default=_env("SWG_SERVICE_CODE"),
        required=_env("SWG_SERVICE_CODE") is None,
    )
    serve.add_argument(
        "--retention-days",
        type=_retention,
        default=_retention(
            _env("SWG_LOG_RETENTION_DAYS") or _env("SWG_RETENTION_DAYS") or str(MAX_RETENTION_DAYS)
        ),
    )
    serve.add_argument(
        "--legal-hold",
        action="store_true",
        default=(_env("SWG_LOG_LEGAL_HOLD") or "").lower() == "true",
        help="keep every day: retention expires nothing (spec.cancellation.legalHold)",
    )
    serve.add_argument(
        "--time-zone",
        "--display-time-zone",
        dest="time_zone",
        default=_env("SWG_LOG_TIME_ZONE") or _env("SWG_LOG_DISPLAY_TIME_ZONE") or "UTC",
        help="IANA zone whose midnight ends a day (spec.logs.timeZone)",
    )
    serve.add_argument("--host", default=_env("SWG_LOGSTORE_HOST", "0.0.0.0"))  # noqa: S104
    serve.add_argument("--http-port", type=int, default=int(_env("SWG_HTTP_PORT") or HTTP_PORT))
    serve.add_argument(
        "--ingest-port", type=int, default=int(_env("SWG_INGEST_PORT") or INGEST_PORT)
    )
    serve.add_argument(
        "--metrics-port", type=int, default=int(_env("SWG_METRICS_PORT") or METRICS_PORT)
    )
    serve.add_argument("--maintenance-interval", type=float, default=60.0)
    ship = sub.add_parser("ship", help="ship the pod's raw log files to the log store")
    _log_format(ship)
    ship.add_argument("--tenant", default=_env("SWG_TENANT"), help="named in the log lines")
    ship.add_argument(
        "--store", default=_env("SWG_LOGSTORE_URL"), required=_env("SWG_LOGSTORE_URL") is None
    )
    env_sources = [s for s in (_env("SWG_SHIP_SOURCES") or "").split(",") if s]
    ship.add_argument(
        "--source",
        type=_source,
        action="append",
        default=[_source(s) for s in env_sources] or None,
        required=not env_sources,
        metavar="KIND[=PATH]",
        help="a raw log to ship: " + ", ".join(k.value for k in SourceKind),
    )
    ship.add_argument(
        "--state-dir",
        type=Path,
        default=Path(_env("SWG_SHIPPER_STATE_DIR", SHIPPER_STATE_DIR) or ""),
    )
    ship.add_argument("--batch-bytes", type=int, default=1024 * 1024)
    ship.add_argument("--poll-interval", type=float, default=0.2)
    ship.add_argument("--linger", type=float, default=3.0)
    ship.add_argument("--timeout", type=float, default=30.0)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        configure(args.log_format, tenant=args.tenant)
    except ValueError as err:  # SWG_LOG_FORMAT, which argparse does not check
        parser.error(str(err))
    if args.command == "serve":
        from swg_logstore.server import serve  # aiohttp only where it is needed
        from swg_logstore.store import LogStore, StoreConfig

        try:
            store = LogStore(
                StoreConfig(
                    root=args.root,
                    tenant=args.tenant,
                    service_code=args.service_code,
                    retention_days=args.retention_days,
                    time_zone=args.time_zone,
                    legal_hold=args.legal_hold,
                )
            )
        except ValueError as err:  # an unknown time zone
            parser.error(str(err))
        asyncio.run(
            serve(
                store,
                host=args.host,
                http_port=args.http_port,
                ingest_port=args.ingest_port,
                metrics_port=args.metrics_port,
                maintenance_interval=args.maintenance_interval,
            )
        )
        return 0
    from swg_logstore.shipper import Shipper, Source, StoreClient

    args.state_dir.mkdir(parents=True, exist_ok=True)
    sources = [Source(kind, path, args.state_dir) for kind, path in args.source]
    shipper = Shipper(
        sources, StoreClient(args.store, timeout=args.timeout), batch_bytes=args.batch_bytes
    )
    return shipper.run(poll_interval=args.poll_interval, linger=args.linger)


if __name__ == "__main__":
    sys.exit(main())
