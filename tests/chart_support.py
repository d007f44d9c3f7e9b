"""helm and helm-docs for the chart tests in new files: the binaries the build script caches,
built here when missing (as `make setup` would)."""

from __future__ import annotations

import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from devtools.binaries import BUILD_SCRIPT, Binaries, cache_dir, pinned_version

REPO_ROOT = Path(__file__).resolve().parents[1]
CHART = REPO_ROOT / "charts" / "swg-operator"


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


def run_helm(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(helm()), *args], capture_output=True, text=True, check=False, timeout=120, cwd=cwd
    )
    if result.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} exited {result.returncode}:\n{result.stderr}")
    return result


def template(*set_args: str) -> list[dict[str, Any]]:
    """`helm template` of the chart with `--set` pairs, no --kube-version: the helm built here
    knows the Kubernetes version it was built against."""
    flags = [arg for pair in set_args for arg in ("--set", pair)]
    text = run_helm("template", "swg", str(CHART), "--namespace", "swg-system", *flags).stdout
    return [doc for doc in yaml.safe_load_all(text) if doc]
