"""`swg-operator render TENANT.yaml --output-dir DIR`: preview everything the operator would
create for a tenant, the way `helm template` previews a chart.

DIR/manifests/ gets one YAML file per object, numbered in apply order
(`NN-<kind>-<name>.yaml`); DIR/config/ gets the raw data-plane files (squid.conf, ACL lists,
c-icap, clamd and freshclam config) exactly as the pods read them. `-o text|json|yaml` is the
format of the summary printed on standard output (json, yaml: the files written, as data).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import yaml
from pydantic import ValidationError

from swg_operator.api import API_VERSION, KIND, OperatorSettings, SpecError, parse_spec
from swg_operator.api.crd import MAX_TENANT_NAME, TENANT_NAME_PATTERN
from swg_operator.capacity import CapacityError
from swg_operator.catalogue import Catalogue, CatalogueError
from swg_operator.catalogue_io import load_blacklist_directory
from swg_operator.commands import yamltext
from swg_operator.commands.errors import file_error
from swg_operator.posix_regex import url_regex_problems
from swg_operator.render import Lifecycle, RenderError, TenantManifests, render_tenant
from swg_operator.sizing_io import load_capacity

MANIFESTS_DIR: Final = "manifests"
CONFIG_DIR: Final = "config"
# The sample catalogue of a source checkout (operator/swg_operator/commands -> repository root).
SAMPLE_CATALOGUE: Final = Path(__file__).resolve().parents[3] / "examples" / "catalogue"


class TenantFileError(ValueError):
    """The tenant file is not a SecureWebGateway this command can read."""


# --- YAML ----------------------------------------------------------------------------------------


def to_yaml(document: Mapping[str, Any]) -> str:
    return yamltext.dump(dict(document))


# --- reading -------------------------------------------------------------------------------------


def read_tenant(path: Path) -> tuple[str, dict[str, Any]]:
    """(name, raw spec) of the SecureWebGateway in `path`."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise TenantFileError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(document, dict):
        raise TenantFileError(f"{path}: expected one {KIND} object")
    if document.get("apiVersion") != API_VERSION or document.get("kind") != KIND:
        raise TenantFileError(f"{path}: expected apiVersion {API_VERSION}, kind {KIND}")
    metadata = document.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    if (
        not isinstance(name, str)
        or len(name) > MAX_TENANT_NAME
        or not re.match(TENANT_NAME_PATTERN, name)
    ):
        raise TenantFileError(
            f"{path}: metadata.name must be a DNS label of at most {MAX_TENANT_NAME} characters"
        )
    spec = document.get("spec")
    if not isinstance(spec, dict):
        raise TenantFileError(f"{path}: spec must be an object")
    return name, spec


def read_settings(path: Path | None) -> OperatorSettings:
    if path is None:
        return OperatorSettings()
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        return OperatorSettings.model_validate(document)
    except (yaml.YAMLError, ValidationError) as exc:
        raise TenantFileError(f"{path}: not valid operator settings: {exc}") from None


def read_platform_signatures(path: Path | None) -> dict[str, str] | None:
    """The files of `path` as the platform signature ConfigMap's data (file name -> text)."""
    if path is None:
        return None
    if not path.is_dir():
        what = "not a directory" if path.exists() else "no such directory"
        raise TenantFileError(
            f"{path}: {what}; --platform-signatures takes the directory of the platform's "
            "signature files (.ndb, .hdb, ...)"
        )
    return {
        entry.name: entry.read_text(encoding="utf-8")
        for entry in sorted(path.iterdir())
        if entry.is_file()
    }


def read_catalogue(path: Path | None) -> Catalogue:
    """The catalogue in `path` (blacklist directory layout), else the sample catalogue of the
    source checkout, else an empty one."""
    if path is None:
        if not SAMPLE_CATALOGUE.is_dir():
            return Catalogue()
        path = SAMPLE_CATALOGUE
    return load_blacklist_directory(path)


# --- writing -------------------------------------------------------------------------------------


def object_file_name(index: int, obj: Mapping[str, Any]) -> str:
    return f"{index:02d}-{str(obj['kind']).lower()}-{obj['metadata']['name']}.yaml"


def write_manifests(manifests: TenantManifests, out_dir: Path) -> list[Path]:
    """Write DIR/manifests/*.yaml and DIR/config/*, replacing those two directories."""
    written: list[Path] = []
    for sub in (MANIFESTS_DIR, CONFIG_DIR):
        shutil.rmtree(out_dir / sub, ignore_errors=True)
        (out_dir / sub).mkdir(parents=True)
    for index, obj in enumerate(manifests.objects):
        target = out_dir / MANIFESTS_DIR / object_file_name(index, obj)
        target.write_text(to_yaml(obj), encoding="utf-8")
        written.append(target)
    for file_name, text in sorted(manifests.config_files.items()):
        target = out_dir / CONFIG_DIR / file_name
        target.write_text(text, encoding="utf-8")
        written.append(target)
    return written


def _occupied(out_dir: Path) -> list[Path]:
    return [
        out_dir / sub
        for sub in (MANIFESTS_DIR, CONFIG_DIR)
        if (out_dir / sub).exists() and any((out_dir / sub).iterdir())
    ]


# --- command -------------------------------------------------------------------------------------


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "render",
        help="write every object and config file a tenant would get, without a cluster",
        description="Render a SecureWebGateway to DIR/manifests (one YAML file per object, in "
        "apply order) and DIR/config (squid.conf, ACL lists, c-icap and clamd config).",
    )
    parser.add_argument("tenant", type=Path, metavar="TENANT.yaml", help="a SecureWebGateway")
    parser.add_argument(
        "--output-dir",
        type=Path,
        required=True,
        metavar="DIR",
        help="directory receiving manifests/ and config/ (created when missing)",
    )
    parser.add_argument(
        "-o",
        "--output",
        choices=("text", "json", "yaml"),
        default="text",
        help="format of the summary on standard output (default text)",
    )
    parser.add_argument(
        "--catalogue",
        type=Path,
        metavar="DIR",
        help="URL category catalogue in the blacklist directory layout "
        "(default: the sample catalogue examples/catalogue of a source checkout)",
    )
    parser.add_argument(
        "--settings", type=Path, metavar="FILE", help="operator settings YAML (camelCase keys)"
    )
    parser.add_argument(
        "--capacity",
        type=Path,
        metavar="FILE",
        help="sizing capacity constants (default: the packaged data/capacity.yaml)",
    )
    parser.add_argument(
        "--platform-signatures",
        type=Path,
        metavar="DIR",
        help="the platform's ClamAV signature files (what the signature ConfigMap of the "
        "operator's namespace holds), for settings with antivirus.signatureSource configMap",
    )
    parser.add_argument(
        "--lifecycle",
        choices=[state.value for state in Lifecycle],
        default=Lifecycle.ACTIVE.value,
        help="render the tenant active, suspended or cancelled (default Active)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace DIR/manifests and DIR/config when they already hold files",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    out_dir: Path = args.output_dir
    occupied = _occupied(out_dir)
    if occupied and not args.overwrite:
        shown = ", ".join(str(p) for p in occupied)
        print(
            f"Refused to write: {shown} already hold files; add --overwrite to replace them, "
            "or choose another --output-dir",
            file=sys.stderr,
        )
        return 2
    try:
        name, raw_spec = read_tenant(args.tenant)
        spec = parse_spec(raw_spec)
        if regex_problems := url_regex_problems(spec):
            raise SpecError(regex_problems)
        manifests = render_tenant(
            name,
            spec,
            catalogue=read_catalogue(args.catalogue),
            settings=read_settings(args.settings),
            capacity=load_capacity(args.capacity),
            lifecycle=Lifecycle(args.lifecycle),
            platform_signatures=read_platform_signatures(args.platform_signatures),
        )
    except SpecError as exc:
        print(f"{args.tenant}: the spec is invalid:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    except RenderError as exc:
        print(f"{args.tenant}: cannot be rendered ({exc.reason}):", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    except (TenantFileError, CatalogueError, CapacityError) as exc:
        print(str(exc), file=sys.stderr)
        return 1
    except OSError as exc:
        print(file_error(exc, "could not be read"), file=sys.stderr)
        return 1
    try:
        written = write_manifests(manifests, out_dir)
    except OSError as exc:
        print(file_error(exc, "could not be written (--output-dir)"), file=sys.stderr)
        return 1
    if args.output != "text":
        summary = {
            "tenant": name,
            "namespace": manifests.namespace,
            "provisionalSizing": manifests.sizing.provisional,
            "manifests": [str(p) for p in written if p.parent.name == MANIFESTS_DIR],
            "config": [str(p) for p in written if p.parent.name == CONFIG_DIR],
        }
        if args.output == "json":
            sys.stdout.write(json.dumps(summary, indent=2) + "\n")
        else:
            sys.stdout.write(yamltext.dump(summary))
        return 0
    provisional = " (sizing PROVISIONAL)" if manifests.sizing.provisional else ""
    print(
        f"Rendered tenant {name} (namespace {manifests.namespace}): "
        f"{len(manifests.objects)} objects to {out_dir / MANIFESTS_DIR}, "
        f"{len(manifests.config_files)} config files to {out_dir / CONFIG_DIR}{provisional}"
    )
    return 0
