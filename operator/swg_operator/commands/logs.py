"""`kubectl swg logs` (and `swg-operator logs`): download a tenant's logs as its admin.

    kubectl swg logs TENANT [--type access|urlfilter|antivirus|sandbox]
                            [--from YYYY-MM-DD] [--to YYYY-MM-DD] [-o ndjson|json|tar]
                            [--local-time [ZONE]] [--file FILE]
                            [--kubeconfig PATH] [--context NAME] [--server URL]

Dates are the tenant's calendar days (spec.logs.timeZone: a day ends at its local midnight),
both included; `--to` defaults to the tenant's today and `--from` to `--to`. Timestamps are UTC;
--local-time adds `tsLocal` in the tenant's time zone (or ZONE). The caller's own kubeconfig
identity is used; see docs/logs.md.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

from swg_logstore.formats import LogType
from swg_operator.commands.cluster_options import add_cluster_arguments


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date YYYY-MM-DD") from None


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("tenant", metavar="TENANT", help="the SecureWebGateway's name")
    parser.add_argument(
        "--type",
        dest="log_type",
        choices=[t.value for t in LogType],
        default=LogType.ACCESS.value,
        help="which log (default: access)",
    )
    parser.add_argument(
        "--from",
        dest="first",
        type=_day,
        help="first day, in the tenant's time zone (default: --to)",
    )
    parser.add_argument(
        "--to", dest="last", type=_day, help="last day, in the tenant's time zone (default: today)"
    )
    parser.add_argument(
        "-o",
        "--output",
        dest="form",
        choices=["ndjson", "json", "tar"],
        default="ndjson",
        help="ndjson (default; json is the same): one JSON record per line; tar: one "
        "<type>-<day>.jsonl.gz per day",
    )
    # The format's name before every command's -o became an output format.
    parser.add_argument(
        "--format", dest="form", choices=["ndjson", "json", "tar"], help=argparse.SUPPRESS
    )
    parser.add_argument(
        "--local-time",
        nargs="?",
        const="tenant",
        metavar="ZONE",
        help="add tsLocal to every record: the time in ZONE (IANA name), or without ZONE in "
        "the tenant's time zone (spec.logs.timeZone); ndjson only",
    )
    parser.add_argument(
        "--file", dest="file", type=Path, metavar="FILE", help="write to FILE instead of stdout"
    )
    add_cluster_arguments(parser)
    parser.add_argument(
        "--server",
        help="talk to a log store at this URL directly (port-forward), not via the API server",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    parser.set_defaults(handler=run)


def add_parser(subparsers: Any) -> None:
    configure(
        subparsers.add_parser(
            "logs",
            help="download a tenant's logs (as one of its declared admins)",
            description=__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
    )


def run(args: argparse.Namespace) -> int:
    from swg_operator.commands.cluster_client import ClusterClientError
    from swg_operator.commands.errors import file_error
    from swg_operator.commands.log_download import LogQuery, Progress, download

    # Absent dates are left to the log store, which knows the tenant's today.
    last: date | None = args.last
    first: date | None = args.first or last
    if first is not None and last is not None and first > last:
        print("error: --from is after --to", file=sys.stderr)
        return 2
    form = "ndjson" if args.form == "json" else args.form
    if args.file is None and form == "tar" and sys.stdout.isatty():
        print(
            "error: a tar download needs --file FILE (standard output is a terminal)",
            file=sys.stderr,
        )
        return 2
    if args.file is not None and not args.file.resolve().parent.is_dir():
        print(
            f"error: {args.file}: cannot be written: the directory {args.file.parent} does not "
            "exist; create it or choose another --file",
            file=sys.stderr,
        )
        return 2
    query = LogQuery(
        tenant=args.tenant, log_type=LogType(args.log_type), first=first, last=last, form=form
    )
    progress = None
    if not args.quiet:
        progress = Progress(write=sys.stderr.write, interactive=sys.stderr.isatty())
    try:
        download(
            query,
            output=args.file,
            kubeconfig=args.kubeconfig,
            context=args.context,
            server=args.server,
            progress=progress,
            local_time=args.local_time,
        )
    except ClusterClientError as err:  # DownloadError too
        print(f"error: {err}", file=sys.stderr)
        return 1
    except OSError as err:  # the output file (network errors are the client's, above)
        print(f"error: {file_error(err, 'could not write the logs')}", file=sys.stderr)
        return 1
    return 0


def kubectl_main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `kubectl-swg` plugin executable: every plugin command
    (`commands.kubectl`), logs and status."""
    from swg_operator.commands.kubectl import main

    return main(argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(kubectl_main())
