"""What goes into an image: where things live, the build context, the inputs digest.

The inputs of an image are its Dockerfile (and ``Dockerfile.dockerignore``), every file its
``COPY``/``ADD`` instructions take from the build context (lock files included), the build
arguments, the base image's content, the builder's version and ``RECIPE_VERSION``; their digest
names the archive and decides whether a build is needed.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import re
import sys
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
IMAGES_DIR = REPO / "images"
NAMES = ("operator", "proxy", "antivirus", "logstore")
REGISTRY = "ghcr.io/swg-operator"
# Bump when the build steps below change in a way that changes the images.
RECIPE_VERSION = "1"

# Never part of a build context: caches and build leftovers (the Dockerfile.dockerignore files
# exclude the same, so what is hashed is what the builder sees).
JUNK_DIRS = {"__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"}
JUNK_GLOBS = ("*.pyc", "*.pyo", "*.egg-info")


def progress(message: str) -> None:
    print(f"[images] {message}", file=sys.stderr, flush=True)


# --- where things live -------------------------------------------------------------------------


def cache_root() -> Path:
    override = os.environ.get("SWG_CACHE")
    return Path(override) if override else Path.home() / ".cache" / "swg-operator"


@dataclass(frozen=True)
class Layout:
    """Paths under the cache: buildah's storage, the tars, the index."""

    cache: Path

    def storage(self, driver: str = "overlay") -> Path:
        """buildah's storage: one per driver (containers/storage keeps to the first one)."""
        return self.cache / "buildah" / ("storage" if driver == "overlay" else f"storage-{driver}")

    def runroot(self, driver: str = "overlay") -> Path:
        return self.cache / "buildah" / ("run" if driver == "overlay" else f"run-{driver}")

    @property
    def images(self) -> Path:
        return self.cache / "images"

    @property
    def index(self) -> Path:
        return self.images / "index.json"

    @property
    def base_dir(self) -> Path:
        return self.cache / "images" / "base"

    @property
    def lock(self) -> Path:
        return self.images / ".lock"

    def archive(self, name: str, digest: str) -> Path:
        return self.images / f"{name}-{digest[:16]}.tar"


def package_version(repo: Path = REPO) -> str:
    project: dict[str, Any] = tomllib.loads((repo / "pyproject.toml").read_text())["project"]
    return str(project["version"])


def image_ref(name: str, version: str, registry: str = REGISTRY) -> str:
    """The ref the chart and the operator's settings name: ghcr.io/swg-operator/<name>:<ver>."""
    return f"{registry}/{name}:{version}"


# --- Dockerfile inputs -------------------------------------------------------------------------


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile: continuations joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", text)
    out: list[tuple[str, str]] = []
    for line in joined.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            word, _, rest = stripped.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def copy_sources(text: str) -> list[str]:
    """Paths the Dockerfile's COPY/ADD take from the build context (not from a stage)."""
    sources: list[str] = []
    for word, rest in instructions(text):
        if word not in {"COPY", "ADD"}:
            continue
        args = rest.split()
        if any(arg.startswith("--from=") for arg in args):
            continue
        paths = [arg for arg in args if not arg.startswith("--")]
        if paths and paths[0].startswith("["):
            paths = json.loads(" ".join(paths))
        sources.extend(paths[:-1])
    return sources


def context_of(dockerfile: Path, repo: Path = REPO) -> Path:
    """The build context a Dockerfile declares ("Build context: the repository root") or its
    folder, as hack/e2e-kind.sh decides it."""
    if re.search(r"^# .*Build context: the repository root", dockerfile.read_text(), re.M):
        return repo
    return dockerfile.parent


def _junk(path: Path) -> bool:
    if any(part in JUNK_DIRS for part in path.parts):
        return True
    return any(fnmatch.fnmatch(part, glob) for part in path.parts for glob in JUNK_GLOBS)


def context_files(context: Path, sources: Sequence[str]) -> list[Path]:
    """Files (relative to the context) that the COPY sources name, junk excluded, sorted."""
    found: set[Path] = set()
    for source in sources:
        matches = sorted(context.glob(source.rstrip("/"))) if source not in {".", "./"} else []
        if source in {".", "./"}:
            matches = [context]
        if not matches:
            raise FileNotFoundError(f"COPY source {source!r} not found in {context}")
        for match in matches:
            if match.is_dir():
                for path in match.rglob("*"):
                    rel = path.relative_to(context)
                    if path.is_file() and not _junk(rel):
                        found.add(rel)
            elif not _junk(match.relative_to(context)):
                found.add(match.relative_to(context))
    return sorted(found)


@dataclass(frozen=True)
class ImageSpec:
    """One image to build: its Dockerfile, context and the files of the context it reads."""

    name: str
    ref: str
    dockerfile: Path
    context: Path
    build_args: Mapping[str, str] = field(default_factory=dict)

    @property
    def ignorefile(self) -> Path | None:
        path = self.dockerfile.with_name(self.dockerfile.name + ".dockerignore")
        return path if path.is_file() else None

    def inputs(self) -> list[Path]:
        """Absolute paths of every file input: Dockerfile, ignore file, context files."""
        text = self.dockerfile.read_text()
        files = [self.context / rel for rel in context_files(self.context, copy_sources(text))]
        extra = [self.dockerfile] + ([self.ignorefile] if self.ignorefile else [])
        return extra + files


def specs(names: Sequence[str] = NAMES, repo: Path = REPO) -> list[ImageSpec]:
    version = package_version(repo)
    out = []
    for name in names:
        dockerfile = repo / "images" / name / "Dockerfile"
        if not dockerfile.is_file():
            raise FileNotFoundError(dockerfile)
        out.append(
            ImageSpec(
                name=name,
                ref=image_ref(name, version),
                dockerfile=dockerfile,
                context=context_of(dockerfile, repo),
                build_args={"VERSION": version},
            )
        )
    return out


def inputs_digest(spec: ImageSpec, *, base_id: str, builder: str, repo: Path = REPO) -> str:
    """sha256 over everything that decides the image (see the module docstring)."""
    digest = hashlib.sha256()

    def add(key: str, value: str) -> None:
        digest.update(f"{key}={value}\n".encode())

    add("recipe", RECIPE_VERSION)
    add("name", spec.name)
    add("ref", spec.ref)
    add("base", base_id)
    add("builder", builder)
    for key in sorted(spec.build_args):
        add(f"arg:{key}", spec.build_args[key])
    for path in spec.inputs():
        rel = path.relative_to(repo) if path.is_relative_to(repo) else path
        mode = "x" if os.access(path, os.X_OK) else "-"
        add(f"file:{rel}:{mode}", hashlib.sha256(path.read_bytes()).hexdigest())
    return digest.hexdigest()
