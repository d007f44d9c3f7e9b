"""Where the pinned analysers live, installed on demand by hack/install-analyzers.sh.

The script's default versions are the single source of truth; they are read from it here, as
`devtools.binaries` does for the control plane's binaries.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from devtools.binaries import cache_dir

REPO_ROOT = Path(__file__).resolve().parents[2]
INSTALL_SCRIPT = REPO_ROOT / "hack" / "install-analyzers.sh"
INSTALL_TIMEOUT = 1200.0

_VERSION_LINE = re.compile(
    r'^(?P<var>[A-Z0-9]+_VERSION)="\$\{(?P=var):-(?P<default>[^}]+)\}"$', re.M
)


class AnalyzerUnavailableError(RuntimeError):
    """An analyser could not be installed (no network to its registry, no Go toolchain)."""


@dataclass(frozen=True)
class Tool:
    name: str  # the install script's argument
    version: str
    path: Path  # the executable


def pinned_versions() -> dict[str, str]:
    text = INSTALL_SCRIPT.read_text()
    defaults = {m["var"]: m["default"] for m in _VERSION_LINE.finditer(text)}
    return {name: os.environ.get(name) or value for name, value in defaults.items()}


def _locate(name: str) -> Tool:
    versions = pinned_versions()
    root = cache_dir()
    if name == "netpolicy":
        version = versions["NETPOLICY_VERSION"]
        return Tool(name, version, root / "bin" / f"netpolicy-{version}" / "netpolicy")
    if name == "nca":
        version = versions["NCA_VERSION"]
        return Tool(name, version, root / "venvs" / f"nca-{version}" / "bin" / "nca")
    if name == "checkov":
        version = versions["CHECKOV_VERSION"]
        return Tool(name, version, root / "venvs" / f"checkov-{version}" / "bin" / "checkov")
    raise ValueError(f"unknown analyser {name!r}")


@cache
def analyzer(name: str) -> Tool:
    """The pinned analyser `name` (netpolicy, nca, checkov), installed first when missing."""
    tool = _locate(name)
    installed = tool.path.parent.parent / ".installed" if name != "netpolicy" else tool.path
    if tool.path.exists() and installed.exists():
        return tool
    result = subprocess.run(
        [str(INSTALL_SCRIPT), name],
        capture_output=True,
        text=True,
        check=False,
        timeout=INSTALL_TIMEOUT,
    )
    if result.returncode != 0 or not tool.path.exists():
        raise AnalyzerUnavailableError(
            f"{INSTALL_SCRIPT} {name} failed ({result.returncode}); run `make setup`:\n"
            f"{result.stderr[-3000:]}"
        )
    return tool
