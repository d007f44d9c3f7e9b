"""`swg-operator crd`: print the SecureWebGateway CRD generated from the API models."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from swg_operator.api.crd import crd_yaml


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "crd",
        help="print the SecureWebGateway CRD (YAML) generated from the API models",
        description="Print the SecureWebGateway CustomResourceDefinition generated from the "
        "API models; `make crds` writes it to crds/.",
    )
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        default=None,
        help="write to this file instead of standard output",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    text = crd_yaml()
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text)
    return 0
