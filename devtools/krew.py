"""The `kubectl swg` plugin as a krew archive, and its manifest `plugins/krew/swg.yaml`.

    python -m devtools.krew build [--out DIR]   the archive, and its sha256 into the manifest
    python -m devtools.krew check               fail unless the sha256 is a fresh build's

The archive (`kubectl-swg-linux-amd64.tar.gz`) holds:

* `kubectl-swg`: a launcher (`#!/usr/bin/env python3`) that puts `lib/` first on the module
  path and runs `swg_operator.commands.logs:kubectl_main`, the entry point `pip install` makes;
* `lib/`: the project's packages (`swg_operator`, `swg_logstore`) and every distribution the
  plugin imports, with their requirements (extras included), copied from `.venv`, the versions
  of `requirements-dev.lock`. Some are compiled (pydantic-core, msgspec, PyYAML), for CPython
  3.11 on x86-64 Linux: the manifest offers that one platform, and the launcher refuses
  another Python with a message saying so.

The archive is reproducible: entries sorted, times, owners and modes fixed, no byte code, and
of each distribution's metadata only METADATA (what `importlib.metadata.version` reads), so
building twice from the same tree gives the same sha256. Any change to the project's packages
changes it: run `make krew-plugin` after one (tests/test_krew_plugin.py checks it).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import importlib.metadata as metadata
import io
import re
import subprocess
import sys
import tarfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
MANIFEST = REPO / "plugins" / "krew" / "swg.yaml"
ARCHIVE_NAME = "kubectl-swg-linux-amd64.tar.gz"
BIN = "kubectl-swg"
PLATFORM = {"os": "linux", "arch": "amd64"}
PYTHON = (3, 11)
# The project's packages, from the source tree.
PROJECT_PACKAGES = ("swg_operator", "swg_logstore")
# The distributions the plugin imports (its modules' imports, `kubectl swg` logs, status and
# notices); their requirements are added by `closure`.
ROOTS = ("httpx2", "lightkube", "PyYAML", "pydantic", "tzdata", "Jinja2")
SKIP_PARTS = {"__pycache__"}
SKIP_SUFFIXES = {".pyc", ".pyo"}

LAUNCHER = f'''#!/usr/bin/env python3
"""kubectl swg: logs, status and notices of a Secure Web Gateway tenant, for its admins.
Installed by krew (plugins/krew/swg.yaml of swg-operator); `pip install swg-operator` is the
other way to get it."""
import os
import sys

if sys.version_info[:2] != {PYTHON!r}:
    sys.exit(
        "kubectl-swg: this build needs Python {PYTHON[0]}.{PYTHON[1]} as python3 (found "
        + "%d.%d" % sys.version_info[:2]
        + "); install it, or install the plugin with `pip install swg-operator` instead"
    )
sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "lib"))

from swg_operator.commands.logs import kubectl_main  # noqa: E402

sys.exit(kubectl_main())
'''


class KrewError(RuntimeError):
    """The archive cannot be built or the manifest does not match it; the message says why."""


def closure(roots: Iterable[str]) -> list[metadata.Distribution]:
    """The installed distributions `roots` need: each root and, recursively, its requirements
    whose markers hold here (with the extras asked for)."""
    found: dict[str, metadata.Distribution] = {}
    todo: list[tuple[str, frozenset[str]]] = [(root, frozenset()) for root in roots]
    done: set[tuple[str, frozenset[str]]] = set()
    while todo:
        name, extras = todo.pop()
        key = canonicalize_name(name)
        if (key, extras) in done:
            continue
        done.add((key, extras))
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            raise KrewError(f"{name} is not installed in .venv: run `make setup`") from None
        found[key] = dist
        for text in dist.requires or []:
            req = Requirement(text)
            wanted = [{"extra": e} for e in extras] or [{"extra": ""}]
            if req.marker is None or any(req.marker.evaluate(env) for env in wanted):
                todo.append((req.name, frozenset(req.extras)))
    return sorted(found.values(), key=lambda d: canonicalize_name(d.metadata["Name"]))


def _dist_files(dist: metadata.Distribution) -> Iterator[tuple[str, Path]]:
    """(archive name under lib/, file) of an installed distribution: its modules and data,
    of its metadata only METADATA."""
    for entry in dist.files or []:
        parts = Path(str(entry)).parts
        if not parts or parts[0] == ".." or SKIP_PARTS & set(parts):
            continue
        if Path(str(entry)).suffix in SKIP_SUFFIXES:
            continue
        if parts[0].endswith(".dist-info") and parts[-1] != "METADATA":
            continue
        if parts[0] == "bin" or parts[0].endswith(".data"):
            continue
        path = Path(str(dist.locate_file(entry)))
        if path.is_file():
            yield "/".join(parts), path


def _project_files() -> Iterator[tuple[str, Path]]:
    for package in PROJECT_PACKAGES:
        root = REPO / "operator" / package
        for path in root.rglob("*"):
            relative = path.relative_to(root.parent)
            skipped = SKIP_PARTS & set(relative.parts) or path.suffix in SKIP_SUFFIXES
            if path.is_file() and not skipped:
                yield relative.as_posix(), path


def archive_entries() -> dict[str, bytes | Path]:
    """Every file of the archive: its name and the bytes or the file they come from."""
    entries: dict[str, bytes | Path] = {BIN: LAUNCHER.encode()}
    for name, path in _project_files():
        entries[f"lib/{name}"] = path
    for dist in closure(ROOTS):
        for name, path in _dist_files(dist):
            entries.setdefault(f"lib/{name}", path)
    return entries


def build_archive(out: Path) -> str:
    """Write the archive to `out`; its sha256."""
    if sys.version_info[:2] != PYTHON:
        raise KrewError(f"build with Python {PYTHON[0]}.{PYTHON[1]} (.venv), the archive's")
    buffer = io.BytesIO()
    with (
        gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for name, source in sorted(archive_entries().items()):
            data = source if isinstance(source, bytes) else source.read_bytes()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755 if name == BIN else 0o644
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(buffer.getvalue())
    return hashlib.sha256(buffer.getvalue()).hexdigest()


def load_manifest(path: Path = MANIFEST) -> dict[str, object]:
    loaded = yaml.safe_load(path.read_text())
    if not isinstance(loaded, dict):
        raise KrewError(f"{path}: not a krew Plugin manifest")
    return loaded


def set_sha256(sha256: str, path: Path = MANIFEST) -> None:
    """Write `sha256` into the manifest's platform entry, leaving the rest of the text as is."""
    text = path.read_text()
    updated, count = re.subn(r"(?m)^(\s*sha256:\s*).*$", rf"\g<1>{sha256}", text)
    if count != 1:
        raise KrewError(f"{path}: expected one `sha256:` line, found {count}")
    path.write_text(updated)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.krew")
    sub = parser.add_subparsers(dest="action", required=True)
    build = sub.add_parser("build", help="build the archive and write its sha256 into the manifest")
    build.add_argument("--out", type=Path, default=REPO / ".local" / "krew")
    sub.add_parser("check", help="build into a temporary directory and compare the sha256")
    args = parser.parse_args(argv)
    try:
        if args.action == "build":
            archive = args.out / ARCHIVE_NAME
            sha256 = build_archive(archive)
            set_sha256(sha256)
            print(f"{archive}: sha256 {sha256} (written to {MANIFEST.relative_to(REPO)})")
            print(
                f"install: kubectl krew install --manifest={MANIFEST.relative_to(REPO)} "
                f"--archive={archive}"
            )
            return 0
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            sha256 = build_archive(Path(tmp) / ARCHIVE_NAME)
        platforms = load_manifest()["spec"]["platforms"]  # type: ignore[index]
        recorded = platforms[0]["sha256"]
        if recorded != sha256:
            print(
                f"{MANIFEST}: sha256 {recorded} is not the archive's ({sha256}): run "
                "`make krew-plugin`",
                file=sys.stderr,
            )
            return 1
        print(f"{MANIFEST}: sha256 {sha256} matches a fresh build")
        return 0
    except (KrewError, OSError, subprocess.CalledProcessError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
