"""Dependencies are declared and locked: every import comes from a declared distribution
(hack/check-imports.py), every declared version is pinned and is the one the hashed locks hold,
and `make setup`/CI and the operator image install from those locks with hashes."""

from __future__ import annotations

import re
import runpy
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHECK = runpy.run_path(str(REPO / "hack" / "check-imports.py"))
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
DEV_LOCK = REPO / "requirements-dev.lock"
IMAGE_LOCK = REPO / "images" / "operator" / "requirements.lock"


def pins(requirements: list[str]) -> dict[str, str]:
    found = {}
    for line in requirements:
        match = re.match(r"^([A-Za-z0-9_.-]+)==([^\s;#]+)", line)
        assert match, f"{line!r} is not pinned with =="
        found[CHECK["normalise"](match[1])] = match[2]
    return found


def locked(path: Path) -> dict[str, str]:
    text = path.read_text()
    entries = re.findall(r"^([A-Za-z0-9_.-]+)==(\S+) \\\n\s+--hash=sha256:[0-9a-f]{64}", text, re.M)
    assert entries, f"{path}: no hashed entries"
    return {CHECK["normalise"](name): version for name, version in entries}


def test_every_imported_distribution_is_declared() -> None:
    assert CHECK["undeclared"]() == []


def test_the_checker_finds_an_undeclared_import(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "m.py").write_text("import yaml\nimport aiohttp\nfrom . import x\n")
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\nname = "p"\ndependencies = ["PyYAML==6.0.4"]\n')
    (problem,) = CHECK["undeclared"](package, pyproject)
    assert problem.startswith("aiohttp: imported by")


def test_runtime_pins_are_the_locked_versions() -> None:
    runtime = pins(PROJECT["dependencies"])
    for lock in (locked(IMAGE_LOCK), locked(DEV_LOCK)):
        for name, version in runtime.items():
            assert lock.get(name) == version, f"{name}: pyproject {version}, lock {lock.get(name)}"


def test_dev_pins_are_the_locked_versions() -> None:
    dev = pins(PROJECT["optional-dependencies"]["dev"])
    lock = locked(DEV_LOCK)
    for name, version in dev.items():
        assert lock.get(name) == version, f"{name}: pyproject {version}, lock {lock.get(name)}"


def test_setup_and_the_image_install_with_hashes_only() -> None:
    makefile = (REPO / "Makefile").read_text()
    assert "pip install -q --require-hashes -r requirements-dev.lock" in makefile
    assert "pip install -q --no-deps -e ." in makefile
    assert "-e '.[dev]'" not in makefile
    dockerfile = (REPO / "images" / "operator" / "Dockerfile").read_text()
    assert "--require-hashes" in dockerfile
    assert "requirements.lock" in dockerfile


LOGSTORE_IN = REPO / "images" / "logstore" / "requirements.in"
LOGSTORE_LOCK = REPO / "images" / "logstore" / "requirements.txt"


def logstore_undeclared(requirements: Path) -> list[str]:
    """Third-party modules swg_logstore imports that no distribution of `requirements` (the
    log store image's input) provides: the image installs the package with --no-deps."""
    wanted = set(
        pins([line for line in requirements.read_text().splitlines() if line[:1].isalnum()])
    )
    distributions = CHECK["importlib"].metadata.packages_distributions()
    problems = []
    for module, files in sorted(
        CHECK["imported_modules"](REPO / "operator" / "swg_logstore").items()
    ):
        if module in CHECK["sys"].stdlib_module_names or module in CHECK["FIRST_PARTY"]:
            continue
        if module == "__future__":
            continue
        providers = {CHECK["normalise"](d) for d in distributions.get(module, [])}
        if not providers & wanted:
            problems.append(f"{module}: imported by {files[0]}, not in {requirements.name}")
    return problems


def test_the_log_store_image_installs_what_the_log_store_imports(tmp_path: Path) -> None:
    assert logstore_undeclared(LOGSTORE_IN) == []
    # The same check fails on an input without one of them.
    short = tmp_path / "requirements.in"
    short.write_text(
        "\n".join(x for x in LOGSTORE_IN.read_text().splitlines() if "prometheus" not in x)
    )
    (problem,) = logstore_undeclared(short)
    assert problem.startswith("prometheus_client: imported by")


def test_the_log_store_lock_holds_its_input_pins() -> None:
    wanted = pins([line for line in LOGSTORE_IN.read_text().splitlines() if line[:1].isalnum()])
    lock = locked(LOGSTORE_LOCK)
    for name, version in wanted.items():
        assert lock.get(name) == version, (
            f"{name}: requirements.in {version}, lock {lock.get(name)}"
        )
