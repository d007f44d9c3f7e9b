"""The `kubectl-swg` plugin: what a tenant's declared admins run with their own identity.

    kubectl swg logs TENANT ...     download the tenant's logs (commands/logs.py)
    kubectl swg status TENANT ...   show the tenant's status (commands/status.py)
    kubectl swg notices TENANT ...  list the tenant's notices and their mail (commands/notices.py)
    kubectl swg evidence TENANT ... what live state shows of its ISO/IEC 27017 controls
                                    (commands/evidence/)

The executable's entry point is `swg_operator.commands.logs:kubectl_main`, which calls `main`.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from swg_operator.commands import evidence, logs, notices, status


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kubectl swg", description="swg-operator's kubectl plugin, for tenant admins."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    logs.add_parser(sub)
    status.add_parser(sub)
    notices.add_parser(sub)
    evidence.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.handler(args)
    return code
