#!/usr/bin/env python3
"""Every third-party module the package imports comes from a distribution pyproject.toml
declares in [project] dependencies (a transitive dependency may vanish with its parent's next
release). Run it with the project's .venv: `.venv/bin/python hack/check-imports.py`; exit 1 and
one line per undeclared import otherwise. tests/test_dependencies.py runs it."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "operator" / "swg_operator"
# The distribution's own packages (pyproject.toml [tool.setuptools] packages).
FIRST_PARTY = frozenset({"swg_operator", "swg_logstore"})


def imported_modules(root: Path) -> dict[str, list[str]]:
    """Top-level module -> files (relative) importing it, for absolute imports under `root`."""
    found: dict[str, list[str]] = {}
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                found.setdefault(name.split(".")[0], []).append(str(path.relative_to(root.parent)))
    return found


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared(pyproject: Path) -> set[str]:
    project = tomllib.loads(pyproject.read_text())["project"]
    return {
        normalise(re.split(r"[\s<>=!~;\[]", dep, maxsplit=1)[0]) for dep in project["dependencies"]
    }


def undeclared(root: Path = PACKAGE, pyproject: Path = REPO / "pyproject.toml") -> list[str]:
    distributions = importlib.metadata.packages_distributions()
    wanted = declared(pyproject)
    problems = []
    for module, files in sorted(imported_modules(root).items()):
        if module in sys.stdlib_module_names or module in FIRST_PARTY or module == "__future__":
            continue
        providers = {normalise(d) for d in distributions.get(module, [])}
        if not providers:
            problems.append(f"{module}: imported by {files[0]} but installed by no distribution")
        elif not providers & wanted:
            problems.append(
                f"{module}: imported by {files[0]}; declare {' or '.join(sorted(providers))} "
                "in pyproject.toml [project] dependencies"
            )
    return problems


if __name__ == "__main__":
    issues = undeclared()
    for issue in issues:
        print(issue, file=sys.stderr)
    sys.exit(1 if issues else 0)
