"""`swg-operator catalogue`: import and check the URL category catalogue (docs/catalogue.md)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from swg_operator.catalogue import (
    DEFAULT_SHARD_BYTES,
    Catalogue,
    CatalogueError,
    CatalogueIssue,
    catalogue_to_configmaps,
)
from swg_operator.catalogue_io import read_blacklist_directory, read_configmap_file
from swg_operator.commands import yamltext
from swg_operator.commands.errors import file_error

DEFAULT_NAMESPACE = "swg-system"


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "catalogue",
        help="import or check the URL category catalogue",
        description="Convert a blacklist directory (one folder per category with domains and "
        "urls files) into the labelled ConfigMaps the operator reads, or check one.",
    )
    commands = parser.add_subparsers(dest="catalogue_command", metavar="ACTION", required=True)

    importer = commands.add_parser(
        "import",
        help="print a blacklist directory as category ConfigMaps",
        description="Print the category ConfigMaps for DIR. Apply them with "
        "`swg-operator catalogue import DIR | kubectl apply -f -`. Any invalid line rejects "
        "the import (exit 1) unless --skip-invalid is given.",
    )
    importer.add_argument("directory", type=Path, metavar="DIR")
    importer.add_argument(
        "-n",
        "--namespace",
        default=DEFAULT_NAMESPACE,
        help=f"the operator's namespace (default {DEFAULT_NAMESPACE})",
    )
    importer.add_argument(
        "-o",
        "--output",
        choices=("yaml", "json"),
        default="yaml",
        help="yaml (default): a stream of ConfigMaps; json: a v1 List",
    )
    importer.add_argument(
        "--skip-invalid",
        action="store_true",
        help="leave invalid lines out (reported on standard error) instead of failing",
    )
    importer.add_argument(
        "--max-shard-bytes",
        type=int,
        default=DEFAULT_SHARD_BYTES,
        metavar="BYTES",
        help=f"data bytes per ConfigMap (default {DEFAULT_SHARD_BYTES})",
    )
    importer.set_defaults(handler=run_import)

    checker = commands.add_parser(
        "check",
        help="validate a blacklist directory or a YAML file of category ConfigMaps",
        description="Report every invalid line (file:line) and a summary per category; exit "
        "1 when there is any error. PATH is a blacklist directory, or a YAML file of "
        "ConfigMaps (`kubectl get configmaps -n swg-system -l swg.dev/url-category -o yaml`).",
    )
    checker.add_argument("path", type=Path, metavar="PATH")
    checker.add_argument(
        "-o",
        "--output",
        choices=("text", "json", "yaml"),
        default="text",
        help="format of the per-category summary (default text)",
    )
    checker.set_defaults(handler=run_check)


def _report(issues: Iterable[CatalogueIssue]) -> int:
    errors = 0
    for issue in issues:
        print(issue, file=sys.stderr)
        errors += issue.severity == "error"
    return errors


def configmaps_yaml(objects: list[dict[str, Any]]) -> str:
    return yamltext.dump_all(objects, width=1000)


def run_import(args: argparse.Namespace) -> int:
    try:
        catalogue, issues = read_blacklist_directory(args.directory)
        errors = _report(issues)
        if errors and not args.skip_invalid:
            print(f"swg-operator catalogue: {errors} error(s); nothing printed", file=sys.stderr)
            return 1
        objects = catalogue_to_configmaps(
            catalogue, namespace=args.namespace, max_shard_bytes=args.max_shard_bytes
        )
    except OSError as exc:
        print(f"swg-operator catalogue: {file_error(exc, 'could not be read')}", file=sys.stderr)
        return 1
    except (CatalogueError, ValueError) as exc:
        print(f"swg-operator catalogue: {exc}", file=sys.stderr)
        return 1
    if args.output == "json":
        json.dump({"apiVersion": "v1", "kind": "List", "items": objects}, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(configmaps_yaml(objects))
    return 0


def _summary(catalogue: Catalogue) -> str:
    rows = [("CATEGORY", "DOMAINS", "URLS", "DESCRIPTION")]
    rows += [
        (c.name, str(len(c.domains)), str(len(c.urls)), c.description) for c in catalogue.values()
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "".join(
        f"{row[0].ljust(widths[0])}  {row[1].rjust(widths[1])}  {row[2].rjust(widths[2])}  "
        f"{row[3]}".rstrip()
        + "\n"
        for row in rows
    )


def run_check(args: argparse.Namespace) -> int:
    try:
        if args.path.is_dir():
            catalogue, issues = read_blacklist_directory(args.path)
        else:
            catalogue, issues = read_configmap_file(args.path)
    except OSError as exc:
        print(f"swg-operator catalogue: {file_error(exc, 'could not be read')}", file=sys.stderr)
        return 1
    except CatalogueError as exc:
        print(f"swg-operator catalogue: {exc}", file=sys.stderr)
        return 1
    errors = _report(issues)
    if args.output == "text":
        sys.stdout.write(_summary(catalogue))
    else:
        document = {
            "categories": [
                {
                    "name": c.name,
                    "domains": len(c.domains),
                    "urls": len(c.urls),
                    "description": c.description,
                }
                for c in catalogue.values()
            ],
            "errors": errors,
        }
        if args.output == "json":
            sys.stdout.write(json.dumps(document, indent=2) + "\n")
        else:
            sys.stdout.write(yamltext.dump(document))
    if errors:
        print(f"swg-operator catalogue: {errors} error(s)", file=sys.stderr)
        return 1
    return 0
