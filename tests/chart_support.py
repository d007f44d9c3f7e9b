"""Shared helpers of the chart tests: helm and helm-docs (the binaries the build script caches,
built here when missing, as `make setup` would), and the chart rendered with `helm template` and
picked apart (`render`, `template`, `by_kind`, `one`, `pod_specs`, `settings_of`)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from devtools.binaries import BUILD_SCRIPT, Binaries, cache_dir, pinned_version

from swg_operator.api import OperatorSettings

REPO_ROOT = Path(__file__).resolve().parents[1]
CHART = REPO_ROOT / "charts" / "swg-operator"
RELEASE = "swg"
NAMESPACE = "swg-system"
DIGEST = "sha256:" + "ab" * 32


@cache
def helm() -> Path:
    binaries = Binaries.from_cache()
    stamp = binaries.helm.parent / "stamp"
    if not binaries.helm.exists() or not stamp.exists():
        subprocess.run([str(BUILD_SCRIPT), "helm"], check=True)
    return binaries.helm


@cache
def go_tool(target: str, binary: str) -> Path:
    """A tool the build script builds with `build-binaries.sh TARGET` (helm-docs, registry)."""
    variable = f"{target.upper().replace('-', '_')}_VERSION"
    path = cache_dir() / "bin" / f"{target}-{pinned_version(variable)}" / binary
    if not path.exists():
        subprocess.run([str(BUILD_SCRIPT), target], check=True)
    return path


def run_helm(
    *args: str, check: bool = True, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(helm()), *args], capture_output=True, text=True, check=False, timeout=120, cwd=cwd
    )
    if check and result.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} exited {result.returncode}:\n{result.stderr}")
    return result


def template(*set_args: str) -> list[dict[str, Any]]:
    """`helm template` of the chart with `--set` pairs, no --kube-version: the helm built here
    knows the Kubernetes version it was built against."""
    flags = [arg for pair in set_args for arg in ("--set", pair)]
    text = run_helm("template", RELEASE, str(CHART), "--namespace", NAMESPACE, *flags).stdout
    return [doc for doc in yaml.safe_load_all(text) if doc]


def kube_version() -> str:
    return Binaries.from_cache().kubernetes_version


def set_args(values: Mapping[str, str]) -> list[str]:
    return [arg for key, value in values.items() for arg in ("--set", f"{key}={value}")]


def helm_template(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """`helm template` of the chart as release RELEASE in NAMESPACE for the Kubernetes version
    of the cached binaries, with `args` (`--set` pairs, `-f` files, ...); with `check` False a
    refusal is returned, not raised."""
    return run_helm(
        "template",
        RELEASE,
        str(CHART),
        "--namespace",
        NAMESPACE,
        "--kube-version",
        kube_version(),
        *args,
        check=check,
    )


@cache
def _render(values: tuple[tuple[str, str], ...], include_crds: bool) -> str:
    extra = ["--include-crds"] if include_crds else []
    return helm_template(*extra, *set_args(dict(values))).stdout


def render(
    values: Mapping[str, str] | None = None, *, include_crds: bool = False
) -> list[dict[str, Any]]:
    text = _render(tuple(sorted((values or {}).items())), include_crds)
    return [doc for doc in yaml.safe_load_all(text) if doc]


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = by_kind(docs, kind)
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def pod_specs(docs: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for doc in docs:
        if doc["kind"] == "Pod":
            yield doc["metadata"]["name"], doc["spec"]
        elif doc["kind"] in ("Deployment", "StatefulSet", "Job"):
            yield doc["metadata"]["name"], doc["spec"]["template"]["spec"]


def settings_of(docs: list[dict[str, Any]]) -> OperatorSettings:
    config_map = one(docs, "ConfigMap")
    return OperatorSettings.model_validate_json(config_map["data"]["settings.json"])
