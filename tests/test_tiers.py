"""The unit tier stands alone: no module under tests/ imports the e2e package (its fixtures start
control planes and daemons), so `pytest tests` needs nothing but the Python environment."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent

# Imports every unit-test module in a fresh interpreter and prints the e2e modules that came along.
LOADER = """
import importlib.util, json, sys
from pathlib import Path
for path in sorted(Path(sys.argv[1]).glob("*.py")):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] == "e2e")))
"""


def e2e_imports(source: str) -> list[str]:
    """The e2e modules that `source` imports, by name."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] == "e2e"]
        elif (
            isinstance(node, ast.ImportFrom)
            and node.level == 0
            and (node.module or "").split(".")[0] == "e2e"
        ):
            found.append(str(node.module))
    return found


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import e2e.cluster", ["e2e.cluster"]),
        ("from e2e.cluster.nodes import NODES", ["e2e.cluster.nodes"]),
        ("def f():\n    from e2e import operator_process", ["e2e"]),
        ("import e2e_tools\nfrom bench.localcluster import nodes_for", []),
    ],
)
def test_the_reader_finds_e2e_imports(source: str, expected: list[str]) -> None:
    assert e2e_imports(source) == expected


def test_no_unit_test_imports_e2e() -> None:
    modules = sorted(TESTS.rglob("*.py"))
    assert len(modules) > 50
    offenders = {
        str(p.relative_to(TESTS)): names for p in modules if (names := e2e_imports(p.read_text()))
    }
    assert offenders == {}


def test_no_unit_test_imports_e2e_indirectly() -> None:
    """Through bench/ or a helper module: the modules loaded, not only the import lines."""
    done = subprocess.run(
        [sys.executable, "-c", LOADER, str(TESTS)],
        cwd=REPO,
        env={"PYTHONPATH": f"{REPO}:{TESTS}", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.splitlines()[-1]) == []
