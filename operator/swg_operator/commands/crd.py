"""`swg-operator crd`: print the SecureWebGateway CRD generated from the API models."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from swg_operator.api.crd import crd_yaml, custom_resource_definition
from swg_operator.commands.errors import file_error


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "crd",
        help="print the SecureWebGateway CRD generated from the API models",
        description="Print the SecureWebGateway CustomResourceDefinition generated from the "
        "API models; `make crds` writes it to crds/.",
    )
    parser.add_argument(
        "-o",
        "--output",
        choices=("yaml", "json"),
        default="yaml",
        help="output format (default yaml, the form committed under crds/)",
    )
    parser.add_argument(
        "--file",
        type=Path,
        default=None,
        metavar="FILE",
        help="write to FILE instead of standard output",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.output == "json":
        text = json.dumps(custom_resource_definition(), indent=2, sort_keys=True) + "\n"
    else:
        text = crd_yaml()
    if args.file is None:
        sys.stdout.write(text)
        return 0
    try:
        args.file.write_text(text)
    except OSError as exc:
        print(file_error(exc, "could not write the CRD"), file=sys.stderr)
        return 1
    return 0
