"""Where the control plane's binaries live: a cache outside the repository, one folder per version.

`e2e/cluster/build-binaries.sh` builds them from the Go module proxy; its default versions
are the single source of truth and are read from the script here, so the two never disagree.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

BUILD_SCRIPT = Path(__file__).resolve().parents[1] / "e2e" / "cluster" / "build-binaries.sh"

_VERSION_LINE = re.compile(
    r'^(?P<var>[A-Z0-9_]+_VERSION)="\$\{(?P=var):-(?P<default>[^}]+)\}"$', re.M
)


class BinariesMissingError(RuntimeError):
    """A cached binary is absent: `make setup` (or build-binaries.sh) has not run yet."""


def cache_dir() -> Path:
    """The binary cache root: $SWG_CACHE or ~/.cache/swg-operator, as in build-binaries.sh."""
    return Path(os.environ.get("SWG_CACHE") or Path.home() / ".cache" / "swg-operator")


def pinned_versions() -> dict[str, str]:
    """Versions the build script pins, overridable by the same environment variables."""
    defaults = {m["var"]: m["default"] for m in _VERSION_LINE.finditer(BUILD_SCRIPT.read_text())}
    wanted = ("K8S_VERSION", "ETCD_VERSION", "KWOK_VERSION", "HELM_VERSION")
    missing = [name for name in wanted if name not in defaults]
    if missing:
        raise RuntimeError(f"{BUILD_SCRIPT} no longer pins {', '.join(missing)}")
    return {name: os.environ.get(name) or defaults[name] for name in wanted}


def pinned_version(var: str) -> str:
    """One `<NAME>_VERSION` the build script pins (the environment variable overrides it)."""
    defaults = {m["var"]: m["default"] for m in _VERSION_LINE.finditer(BUILD_SCRIPT.read_text())}
    if var not in defaults:
        raise RuntimeError(f"{BUILD_SCRIPT} does not pin {var}")
    return os.environ.get(var) or defaults[var]


@dataclass(frozen=True)
class Binaries:
    """Absolute paths of every binary (and the kwok stages file) the control plane runs."""

    kubernetes_version: str
    etcd: Path
    kube_apiserver: Path
    kube_controller_manager: Path
    kube_scheduler: Path
    kubectl: Path
    kwok: Path
    kwok_stages: Path
    helm: Path

    @classmethod
    def from_cache(cls, root: Path | None = None) -> Binaries:
        """Locate the cached binaries; nothing is built or checked for existence here."""
        bin_root = (root or cache_dir()) / "bin"
        v = pinned_versions()
        k8s = bin_root / f"kubernetes-{v['K8S_VERSION']}"
        kwok = bin_root / f"kwok-{v['KWOK_VERSION']}"
        return cls(
            kubernetes_version=v["K8S_VERSION"],
            etcd=bin_root / f"etcd-{v['ETCD_VERSION']}" / "etcd",
            kube_apiserver=k8s / "kube-apiserver",
            kube_controller_manager=k8s / "kube-controller-manager",
            kube_scheduler=k8s / "kube-scheduler",
            kubectl=k8s / "kubectl",
            kwok=kwok / "kwok",
            kwok_stages=kwok / "stages.yaml",
            helm=bin_root / f"helm-{v['HELM_VERSION']}" / "helm",
        )

    def all_paths(self) -> dict[str, Path]:
        return {
            "etcd": self.etcd,
            "kube-apiserver": self.kube_apiserver,
            "kube-controller-manager": self.kube_controller_manager,
            "kube-scheduler": self.kube_scheduler,
            "kubectl": self.kubectl,
            "kwok": self.kwok,
            "kwok stages": self.kwok_stages,
            "helm": self.helm,
        }

    def require(self) -> Binaries:
        """Fail with the command that fixes it when anything is missing."""
        missing = [
            f"{name} ({path})" for name, path in self.all_paths().items() if not path.exists()
        ]
        if missing:
            raise BinariesMissingError(
                "missing cached binaries: "
                + ", ".join(missing)
                + f"; build them once with `make setup` (or {BUILD_SCRIPT} all)"
            )
        return self


def cached_helm() -> Path:
    """The helm that `make setup` built; tests use it and never build it themselves."""
    helm = Binaries.from_cache().helm
    if not helm.exists():
        raise BinariesMissingError(
            f"helm is not built ({helm}): build it once with `make setup` (or {BUILD_SCRIPT} helm)"
        )
    return helm


def find_tool(cached: Path, name: str) -> Path | None:
    """The cached tool when built, else the one on PATH (an external cluster needs no build)."""
    if cached.exists():
        return cached
    found = shutil.which(name)
    return Path(found) if found else None
