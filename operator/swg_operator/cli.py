"""The `swg-operator` command line: one entry point, one subcommand per module.

Each subcommand lives in its own module exposing ``add_parser(subparsers)``, which registers the
subcommand and sets ``handler`` (a function of the parsed arguments returning an exit code). The
modules are listed here by name so the CLI starts without importing kopf or the cluster client
unless the chosen subcommand needs them.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

from swg_operator import __version__

Command = Callable[[argparse.Namespace], int]

# One line per subcommand module; keep sorted.
SUBCOMMAND_MODULES: tuple[str, ...] = (
    "swg_operator.commands.catalogue",
    "swg_operator.commands.completion",
    "swg_operator.commands.crd",
    "swg_operator.commands.evidence",
    "swg_operator.commands.logs",
    "swg_operator.commands.notices",
    "swg_operator.commands.receipt",
    "swg_operator.commands.render",
    "swg_operator.commands.run",
    "swg_operator.commands.sizing",
    "swg_operator.commands.status",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="swg-operator",
        description="Runs one isolated Secure Web Gateway per customer on Kubernetes.",
    )
    parser.add_argument("--version", action="version", version=f"swg-operator {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(name).add_parser(subparsers)
    # `completion` describes this very parser; it gets it from here (commands sit below cli).
    parser.set_defaults(build_parser=build_parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Command | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    return handler(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
