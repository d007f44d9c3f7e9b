"""The import contracts of pyproject.toml can fail: every name they forbid is one the code
really imports somewhere (a misspelt name, `httpx` for `httpx2`, forbids nothing), and the
layers contract places every module of the operator package."""

from __future__ import annotations

import tomllib
from functools import cache
from pathlib import Path
from typing import Any

import grimp
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGE = REPO_ROOT / "operator" / "swg_operator"


@cache
def config() -> dict[str, Any]:
    data: dict[str, Any] = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    return data["tool"]["importlinter"]


@cache
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(*config()["root_packages"], include_external_packages=True)


def imported_somewhere(name: str) -> bool:
    """`name` or one of its submodules is a module of the roots, or an external one they import."""
    modules = graph().modules
    return any(m == name or m.startswith(name + ".") for m in modules)


FORBIDDEN = [
    (contract["name"], name)
    for contract in config()["contracts"]
    if contract["type"] == "forbidden"
    for name in contract["forbidden_modules"]
]


@pytest.mark.parametrize(("contract", "name"), FORBIDDEN, ids=[f"{c}: {n}" for c, n in FORBIDDEN])
def test_every_forbidden_name_is_a_module_the_code_imports(contract: str, name: str) -> None:
    assert imported_somewhere(name), f"{contract!r} forbids {name!r}, which nothing imports"


def test_the_layers_place_every_module_of_the_operator_package() -> None:
    [layers] = [c for c in config()["contracts"] if c["type"] == "layers"]
    assert layers["containers"] == ["swg_operator"]
    assert layers["exhaustive"] is True
    placed = {name.strip() for layer in layers["layers"] for name in layer.split("|")}
    modules = {
        p.stem if p.is_file() else p.name
        for p in PACKAGE.iterdir()
        if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").is_file()
    }
    assert modules == placed
