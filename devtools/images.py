"""The project's four images built without a Docker engine: ``make images``.

Debian's ``buildah`` (``--isolation chroot``, storage of its own under the cache) builds
``images/*/Dockerfile`` on a ``debian:trixie-slim`` base that is made here by debootstrap
(Debian 13, minbase, trimmed like the official slim image) and imported into buildah's storage
under that very name, so ``FROM debian:trixie-slim`` resolves locally and nothing is pulled.

Each image is written as a docker-archive tar (what ``ctr -n k8s.io images import`` and
``docker load`` read) named by the digest of its inputs, and recorded in a JSON index::

    $SWG_CACHE/images/index.json            (SWG_CACHE defaults to ~/.cache/swg-operator)
    {"version": 1,
     "base": {"ref": "docker.io/library/debian:trixie-slim", "imageId": "sha256:...", ...},
     "images": {"ghcr.io/swg-operator/proxy:0.1.0":
                   {"name": "proxy", "archive": "/.../images/proxy-<digest>.tar",
                    "format": "docker-archive", "imageId": "sha256:<config digest>",
                    "inputsDigest": "<sha256>", ...}, ...}}

The inputs of an image are its Dockerfile (and ``Dockerfile.dockerignore``), every file its
``COPY``/``ADD`` instructions take from the build context (lock files included), the build
arguments, the base image's content (the digest of its root filesystem tar, which survives a
re-import into a new storage), the builder's version and ``RECIPE_VERSION``. A build whose
inputs digest is already in the index, with its tar present, is skipped: a rebuild of unchanged
inputs costs a second or two.

Usage::

    python -m devtools.images build [NAME...]     # build what changed (--jobs 2), print the index
    python -m devtools.images base [--force]      # (re)make debian:trixie-slim
    python -m devtools.images digest [NAME...]    # the inputs digest of each image
    python -m devtools.images index               # print the index
    python -m devtools.images lock                # regenerate the hashed lock files (PyPI)
    python -m devtools.images ctr-import --address SOCK   # ctr -n k8s.io images import every tar
"""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import tomllib
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devtools import rootfs

REPO = Path(__file__).resolve().parents[1]
IMAGES_DIR = REPO / "images"
NAMES = ("operator", "proxy", "antivirus", "logstore")
REGISTRY = "ghcr.io/swg-operator"
BASE_REF = "docker.io/library/debian:trixie-slim"  # what `FROM debian:trixie-slim` resolves to
INDEX_VERSION = 1
# Bump when the build steps below change in a way that changes the images.
RECIPE_VERSION = "1"
# Bump when the base recipe (debootstrap, trimming) changes.
BASE_VERSION = "1"
# The CA bundle handed to builds as the secret `ca-bundle` (never stored in an image): lets pip
# reach PyPI from a machine behind a TLS-inspecting egress proxy. Absent: pip's default trust.
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
# Pinned tool that regenerates the lock files (`python -m devtools.images lock`).
PIP_TOOLS = "pip-tools==7.6.2"

# Never part of a build context: caches and build leftovers (the Dockerfile.dockerignore files
# exclude the same, so what is hashed is what the builder sees).
JUNK_DIRS = {"__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"}
JUNK_GLOBS = ("*.pyc", "*.pyo", "*.egg-info")

# What the official debian:*-slim images (debuerreotype) add on top of debootstrap.
SLIM_DPKG_EXCLUDES = (
    "# Like debian:*-slim: no documentation, manuals or translations (copyrights stay).\n"
    """path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
"""
)
APT_CONFIG = {
    "docker-clean": (
        'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb '
        '/var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };\n'
        'APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb '
        '/var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };\n'
        'Dir::Cache::pkgcache "";\nDir::Cache::srcpkgcache "";\n'
    ),
    "docker-no-languages": 'Acquire::Languages "none";\n',
    "docker-gzip-indexes": 'Acquire::GzipIndexes "true";\n',
    "docker-autoremove-suggests": 'Apt::AutoRemove::SuggestsImportant "false";\n',
}
DPKG_SPEEDUP = "force-unsafe-io\n"
ENV_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _log(message: str) -> None:
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


# --- index -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One built image in the index."""

    ref: str
    name: str
    archive: str
    image_id: str
    inputs_digest: str
    format: str = "docker-archive"
    built_at: str = ""
    build_seconds: float = 0.0
    revision: str = "unknown"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "archive": self.archive,
            "format": self.format,
            "imageId": self.image_id,
            "inputsDigest": self.inputs_digest,
            "builtAt": self.built_at,
            "buildSeconds": self.build_seconds,
            "revision": self.revision,
        }

    @classmethod
    def from_json(cls, ref: str, data: Mapping[str, Any]) -> Entry:
        return cls(
            ref=ref,
            name=str(data["name"]),
            archive=str(data["archive"]),
            image_id=str(data["imageId"]),
            inputs_digest=str(data["inputsDigest"]),
            format=str(data.get("format", "docker-archive")),
            built_at=str(data.get("builtAt", "")),
            build_seconds=float(data.get("buildSeconds", 0.0)),
            revision=str(data.get("revision", "unknown")),
        )


@dataclass
class Index:
    images: dict[str, Entry] = field(default_factory=dict)
    base: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": INDEX_VERSION,
            "base": self.base,
            "images": {ref: self.images[ref].to_json() for ref in sorted(self.images)},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Index:
        if data.get("version") != INDEX_VERSION:
            return cls()
        images = {ref: Entry.from_json(ref, item) for ref, item in data["images"].items()}
        return cls(images=images, base=dict(data.get("base", {})))


def read_index(path: Path) -> Index:
    """The index at ``path``; an empty one when absent or of another version."""
    try:
        return Index.from_json(json.loads(path.read_text()))
    except FileNotFoundError:
        return Index()


def write_index(path: Path, index: Index) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps(index.to_json(), indent=2, sort_keys=True) + "\n")
    tmp.replace(path)


def archive_image_id(archive: Path) -> str:
    """The image id (config digest) of a docker-archive tar, read from its manifest.json."""
    config = str(archive_manifest(archive)["Config"])
    return "sha256:" + Path(config).name.removesuffix(".json").removeprefix("sha256:")


def is_current(entry: Entry | None, digest: str) -> bool:
    return entry is not None and entry.inputs_digest == digest and Path(entry.archive).is_file()


# --- buildah -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Buildah:
    layout: Layout
    driver: str = "overlay"

    def argv(self, *args: str) -> list[str]:
        return [
            "buildah",
            "--root",
            str(self.layout.storage(self.driver)),
            "--runroot",
            str(self.layout.runroot(self.driver)),
            "--storage-driver",
            self.driver,
            *args,
        ]

    def run(self, *args: str, log: Path | None = None) -> str:
        argv = self.argv(*args)
        if log is None:
            proc = subprocess.run(argv, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                raise RuntimeError(f"{' '.join(argv)}: {proc.stderr.strip()}")
            return proc.stdout.strip()
        with log.open("ab") as out:
            out.write(f"\n$ {' '.join(argv)}\n".encode())
            out.flush()
            code = subprocess.run(
                argv, stdout=out, stderr=subprocess.STDOUT, check=False
            ).returncode
        if code != 0:
            tail = log.read_text(errors="replace").splitlines()[-40:]
            raise RuntimeError(f"buildah exited {code}; {log}:\n" + "\n".join(tail))
        return ""

    def image_id(self, ref: str) -> str | None:
        proc = subprocess.run(
            self.argv("images", "--no-trunc", "--format", "{{.ID}}", ref),
            capture_output=True,
            text=True,
            check=False,
        )
        ids = proc.stdout.split()
        if proc.returncode != 0 or not ids:
            return None
        return ids[0] if ids[0].startswith("sha256:") else f"sha256:{ids[0]}"

    @staticmethod
    def version() -> str:
        out = subprocess.run(["buildah", "--version"], capture_output=True, text=True, check=True)
        return out.stdout.strip()


def need_buildah() -> None:
    if shutil.which("buildah") is None:
        raise FileNotFoundError("buildah is missing: hack/install-apt.sh buildah (make images)")
    if os.geteuid() != 0:
        raise PermissionError("building images needs root (debootstrap, buildah chroot)")


# --- the base image ----------------------------------------------------------------------------


def base_key() -> str:
    digest = hashlib.sha256()
    digest.update(f"v={BASE_VERSION}\nsuite={rootfs.SUITE}\nmirror={rootfs.MIRROR}\n".encode())
    digest.update(rootfs.SOURCES.encode() + SLIM_DPKG_EXCLUDES.encode())
    digest.update(json.dumps(APT_CONFIG, sort_keys=True).encode())
    return digest.hexdigest()[:16]


def _slim(root: Path) -> None:
    """Configure and trim a debootstrap tree the way debian:*-slim is."""
    (root / "etc/apt/sources.list.d/debian.sources").write_text(rootfs.SOURCES)
    with contextlib.suppress(FileNotFoundError):
        (root / "etc/apt/sources.list").unlink()
    dpkg_cfg = root / "etc/dpkg/dpkg.cfg.d"
    for item in dpkg_cfg.iterdir():  # debootstrap may leave the host's links here
        if item.is_symlink() and not item.exists():
            item.unlink()
    (dpkg_cfg / "docker").write_text(SLIM_DPKG_EXCLUDES)
    (dpkg_cfg / "docker-apt-speedup").write_text(DPKG_SPEEDUP)
    for name, text in APT_CONFIG.items():
        (root / "etc/apt/apt.conf.d" / name).write_text(text)
    policy = root / "usr/sbin/policy-rc.d"  # no daemon starts during a build
    policy.write_text(rootfs.POLICY_RC_D)
    policy.chmod(0o755)
    (root / "etc/resolv.conf").write_text("")
    (root / "etc/hostname").write_text("")
    share = root / "usr/share"
    for doc in (share / "doc").iterdir():
        if doc.is_dir() and not doc.is_symlink():
            for item in doc.iterdir():
                if item.name != "copyright":
                    shutil.rmtree(
                        item
                    ) if item.is_dir() and not item.is_symlink() else item.unlink()
    for name in ("man", "groff", "info", "lintian", "linda"):
        target = share / name
        if target.is_dir():
            shutil.rmtree(target)
            target.mkdir() if name == "man" else None
    locale = share / "locale"
    if locale.is_dir():
        for item in locale.iterdir():
            if item.name != "locale.alias":
                shutil.rmtree(item) if item.is_dir() else item.unlink()
    for rel in ("var/lib/apt/lists", "var/cache/apt", "var/log", "tmp", "var/tmp", "dev"):
        target = root / rel
        if target.is_dir():
            for item in target.iterdir():
                if item.is_dir() and not item.is_symlink():
                    shutil.rmtree(item)
                else:
                    item.unlink()
    (root / "var/lib/apt/lists/partial").mkdir(parents=True, exist_ok=True)
    (root / "var/cache/apt/archives/partial").mkdir(parents=True, exist_ok=True)
    for rel in ("etc/machine-id", "var/lib/dbus/machine-id"):
        with contextlib.suppress(FileNotFoundError):
            (root / rel).unlink()


def _import_base(buildah: Buildah, tarball: Path, log: Path) -> str:
    """buildah from scratch + the tree + debian:trixie-slim's config, committed as BASE_REF."""
    container = buildah.run("from", "--name", f"swg-base-{os.getpid()}", "scratch")
    try:
        mount = buildah.run("mount", container)
        subprocess.run(
            [
                "tar",
                "--numeric-owner",
                "--xattrs",
                "--xattrs-include=*",
                "-C",
                mount,
                "-xf",
                str(tarball),
            ],
            check=True,
        )
        buildah.run("umount", container)
        buildah.run("config", "--cmd", "bash", "--env", f"PATH={ENV_PATH}", container)
        buildah.run("config", "--os", "linux", "--arch", "amd64", container)
        buildah.run("commit", "--rm", "--format", "docker", container, BASE_REF, log=log)
    except BaseException:
        with contextlib.suppress(RuntimeError):
            buildah.run("rm", container)
        raise
    image_id = buildah.image_id(BASE_REF)
    if image_id is None:
        raise RuntimeError(f"{BASE_REF} is not in the storage after the commit")
    return image_id


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return f"sha256:{digest.hexdigest()}"


def base_manifest(layout: Layout) -> dict[str, Any] | None:
    """What ensure_base recorded of the current base, or None before the first build."""
    path = layout.base_dir / base_key() / "manifest.json"
    if not path.is_file():
        return None
    info: dict[str, Any] = json.loads(path.read_text())
    return info


def ensure_base(buildah: Buildah, *, force: bool = False) -> dict[str, Any]:
    """debian:trixie-slim in buildah's storage: imported from the cached tree, debootstrapped
    first when that is missing (about a minute) or ``force``."""
    layout = buildah.layout
    key = base_key()
    entry = layout.base_dir / key
    tarball = entry / "rootfs.tar"
    manifest = entry / "manifest.json"
    if manifest.is_file() and tarball.is_file() and not force:
        info: dict[str, Any] = json.loads(manifest.read_text())
        if "rootfsDigest" not in info:
            info["rootfsDigest"] = _sha256_file(tarball)
            manifest.write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
        # buildah's id of the base, per storage driver (each driver has a storage of its own)
        ids: dict[str, str] = info.setdefault("imageIds", {})
        current = buildah.image_id(BASE_REF)
        if current is not None and current == ids.get(buildah.driver, info.get("imageId")):
            info["imageId"] = current
            return info
        log = entry / "import.log"
        info["imageId"] = ids[buildah.driver] = _import_base(buildah, tarball, log)
        manifest.write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
        _log(f"imported {BASE_REF} {info['imageId'][:19]} from {tarball}")
        return info
    started = time.monotonic()
    tmp = entry.with_name(f".{key}.build-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    log = tmp / "build.log"
    root = tmp / "root"
    _log(f"debootstrap {rootfs.SUITE} minbase into {root} (log: {log})")
    rootfs._run(
        [
            "debootstrap",
            "--variant=minbase",
            f"--keyring={rootfs.KEYRING}",
            rootfs.SUITE,
            str(root),
            rootfs.MIRROR,
        ],
        log=log,
    )
    _slim(root)
    versions = rootfs._installed_versions(root)
    rootfs._run(
        [
            "tar",
            "--numeric-owner",
            "--xattrs",
            "--xattrs-include=*",
            "--sort=name",
            "-C",
            str(root),
            "-cf",
            str(tmp / "rootfs.tar"),
            ".",
        ],
        log=log,
    )
    shutil.rmtree(root)
    info = {
        "ref": BASE_REF,
        "key": key,
        "suite": rootfs.SUITE,
        "builtAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "packages": versions,
    }
    info["rootfsDigest"] = _sha256_file(tmp / "rootfs.tar")
    info["imageId"] = _import_base(buildah, tmp / "rootfs.tar", log)
    info["imageIds"] = {buildah.driver: info["imageId"]}
    info["buildSeconds"] = round(time.monotonic() - started, 1)
    (tmp / "manifest.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    if entry.exists():
        shutil.rmtree(entry)
    tmp.rename(entry)
    _log(f"made {BASE_REF} {info['imageId'][:19]} in {info['buildSeconds']} s")
    return info


# --- building ----------------------------------------------------------------------------------


def revision(spec: ImageSpec, repo: Path = REPO) -> str:
    """The last commit that changed the image's inputs, "-dirty" when they differ from it."""
    paths = [str(p) for p in spec.inputs()]
    try:
        last = subprocess.run(
            ["git", "-C", str(repo), "log", "-1", "--format=%H", "--", *paths],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--", *paths],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return (last or "unknown") + ("-dirty" if dirty else "")


def build_one(buildah: Buildah, spec: ImageSpec, digest: str, *, base_id: str) -> Entry:
    layout = buildah.layout
    layout.images.mkdir(parents=True, exist_ok=True)
    log = layout.images / f"{spec.name}.log"
    log.write_text(f"# {spec.ref} inputs {digest} base {base_id}\n")
    started = time.monotonic()
    rev = revision(spec)
    iidfile = layout.images / f".{spec.name}.iid"
    argv = [
        "bud",
        "--isolation",
        "chroot",
        "--pull=never",
        "--layers",
        "--format",
        "docker",
        "--iidfile",
        str(iidfile),
        "-f",
        str(spec.dockerfile),
        "-t",
        spec.ref,
        "--build-arg",
        f"REVISION={rev}",
    ]
    for key, value in sorted(spec.build_args.items()):
        argv += ["--build-arg", f"{key}={value}"]
    if spec.ignorefile is not None:
        argv += ["--ignorefile", str(spec.ignorefile)]
    if HOST_CA_BUNDLE.is_file():
        argv += ["--secret", f"id=ca-bundle,src={HOST_CA_BUNDLE}"]
    _log(f"building {spec.ref} (log: {log})")
    buildah.run(*argv, str(spec.context), log=log)
    archive = layout.archive(spec.name, digest)
    tmp = archive.with_name(f".{archive.name}.{os.getpid()}")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    buildah.run("push", spec.ref, f"docker-archive:{tmp}:{spec.ref}", log=log)
    tmp.replace(archive)
    for old in layout.images.glob(f"{spec.name}-*.tar"):
        if old != archive:
            old.unlink()
    seconds = round(time.monotonic() - started, 1)
    entry = Entry(
        ref=spec.ref,
        name=spec.name,
        archive=str(archive),
        image_id=archive_image_id(archive),
        inputs_digest=digest,
        built_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        build_seconds=seconds,
        revision=rev,
    )
    _log(f"built {spec.ref} {entry.image_id[:19]} in {seconds} s: {archive}")
    return entry


def build(
    names: Sequence[str] = NAMES,
    *,
    layout: Layout | None = None,
    force: bool = False,
    driver: str = "overlay",
    jobs: int = 2,
) -> Index:
    """Build every image whose inputs changed, ``jobs`` at a time; return the index (also
    written to disk, after each image)."""
    need_buildah()
    layout = layout or Layout(cache_root())
    buildah = Buildah(layout, driver)
    layout.images.mkdir(parents=True, exist_ok=True)
    with rootfs._lock(layout.lock):
        base = ensure_base(buildah)
        builder = Buildah.version()
        index = read_index(layout.index)
        index.base = {k: v for k, v in base.items() if k != "packages"}
        todo: list[tuple[ImageSpec, str]] = []
        for spec in specs(names):
            # The base's content (its root filesystem tar), not buildah's id of it: the digest
            # survives a re-import of the same base into a new storage.
            digest = inputs_digest(spec, base_id=str(base["rootfsDigest"]), builder=builder)
            if is_current(index.images.get(spec.ref), digest) and not force:
                _log(f"{spec.ref} is current ({digest[:16]})")
            else:
                todo.append((spec, digest))
        failures: list[str] = []
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            running = {
                pool.submit(build_one, buildah, spec, digest, base_id=str(base["imageId"])): spec
                for spec, digest in todo
            }
            for done in as_completed(running):
                try:
                    entry = done.result()
                except (OSError, RuntimeError, subprocess.CalledProcessError) as error:
                    failures.append(f"{running[done].ref}: {error}")
                    continue
                index.images[entry.ref] = entry
                write_index(layout.index, index)
        write_index(layout.index, index)
        if failures:
            raise RuntimeError("\n".join(failures))
        return index


# --- lock files --------------------------------------------------------------------------------

LOCKS = {
    # lock file: (input, header)
    "images/operator/requirements.lock": ("pyproject.toml", "the operator's dependencies"),
    # `make setup` and CI install this one (--require-hashes), then the project with --no-deps.
    "requirements-dev.lock": ("pyproject.toml[dev]", "the development environment"),
    "images/logstore/requirements.txt": ("images/logstore/requirements.in", "aiohttp's closure"),
}


def regenerate_locks(repo: Path = REPO, cache: Path | None = None) -> None:
    """pip-compile --generate-hashes of each lock, constrained to the versions installed in
    .venv (the versions the tests run with). Needs PyPI."""
    tools = (cache or cache_root()) / "images-tools" / "venv"
    if not (tools / "bin" / "pip-compile").exists():
        subprocess.run([sys.executable, "-m", "venv", str(tools)], check=True)
        subprocess.run([str(tools / "bin/pip"), "install", "-q", PIP_TOOLS], check=True)
    freeze = subprocess.run(
        [str(repo / ".venv/bin/pip"), "freeze", "--exclude-editable"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    with tempfile.TemporaryDirectory() as tmp:
        constraints = Path(tmp) / "constraints.txt"
        constraints.write_text(freeze)
        for out, (source, what) in LOCKS.items():
            argv = [str(tools / "bin/pip-compile"), "-q", "--generate-hashes", "--allow-unsafe"]
            argv += ["--strip-extras", "--no-emit-find-links", "--no-emit-index-url"]
            input_file, _, extra = source.partition("[")
            if extra:
                argv += ["--extra", extra.rstrip("]")]
            argv += ["--no-header", "-c", str(constraints), "-o", out, input_file]
            subprocess.run(argv, check=True, cwd=repo, env={**os.environ, "PIP_FIND_LINKS": ""})
            path = repo / out
            body = path.read_text().replace(str(constraints), ".venv")
            header = (
                f"# Hashed lock of {what} ({source}), the versions .venv runs the tests with.\n"
                "# Made by pip-compile --generate-hashes; regenerate: "
                ".venv/bin/python -m devtools.images lock\n"
            )
            path.write_text(header + body)


# --- reading an archive ------------------------------------------------------------------------


def archive_manifest(archive: Path) -> dict[str, Any]:
    """The single entry of a docker-archive's manifest.json (Config, RepoTags, Layers)."""
    with tarfile.open(archive) as tar:
        member = tar.extractfile("manifest.json")
        if member is None:
            raise ValueError(f"{archive}: no manifest.json")
        manifest: list[dict[str, Any]] = json.load(member)
    if len(manifest) != 1:
        raise ValueError(f"{archive}: {len(manifest)} images, expected one")
    return manifest[0]


def archive_config(archive: Path) -> dict[str, Any]:
    """The image configuration (``config`` of the docker image JSON: User, Entrypoint, ...)."""
    name = str(archive_manifest(archive)["Config"])
    with tarfile.open(archive) as tar:
        member = tar.extractfile(name)
        if member is None:
            raise ValueError(f"{archive}: no {name}")
        image: dict[str, Any] = json.load(member)
    config: dict[str, Any] = image.get("config") or {}
    return config


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.is_symlink() or path.exists():
        path.unlink()


def unpack(archive: Path, dest: Path) -> None:
    """The image's root filesystem: its layers applied in order into ``dest``, whiteouts
    (``.wh.<name>``, ``.wh..wh..opq``) honoured. Needs root for ownership and device nodes."""
    layers = [str(layer) for layer in archive_manifest(archive)["Layers"]]
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive) as outer:
        for name in layers:
            blob = outer.extractfile(name)
            if blob is None:
                raise ValueError(f"{archive}: no layer {name}")
            with tarfile.open(fileobj=blob, mode="r|*") as layer:
                for member in layer:
                    rel = Path(member.name.lstrip("/")).as_posix().removeprefix("./")
                    if not rel or rel == ".":
                        continue
                    parent, _, base = rel.rpartition("/")
                    where = dest / parent if parent else dest
                    if base == ".wh..wh..opq":
                        if where.is_dir():
                            for item in where.iterdir():
                                _remove(item)
                        continue
                    if base.startswith(".wh."):
                        _remove(where / base.removeprefix(".wh."))
                        continue
                    target = dest / rel
                    if target.is_symlink() or (target.exists() and not member.isdir()):
                        _remove(target)
                    layer.extract(member, dest, set_attrs=True, filter="fully_trusted")


# --- containerd --------------------------------------------------------------------------------


def ctr_import(
    index: Index, *, address: str, namespace: str = "k8s.io", ctr: str = "ctr"
) -> list[str]:
    """``ctr images import`` of every archive of the index; returns the refs imported."""
    done = []
    for ref, entry in sorted(index.images.items()):
        subprocess.run(
            [ctr, "--address", address, "-n", namespace, "images", "import", entry.archive],
            check=True,
        )
        done.append(ref)
    return done


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.images", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_build = sub.add_parser("build", help="build the images whose inputs changed")
    p_build.add_argument("names", nargs="*", metavar="NAME", help=", ".join(NAMES))
    p_build.add_argument("--force", action="store_true", help="rebuild even when current")
    p_build.add_argument(
        "--jobs", type=int, default=int(os.environ.get("SWG_IMAGES_JOBS", "2")), help="at once"
    )
    p_build.add_argument("--driver", default=os.environ.get("SWG_BUILDAH_DRIVER", "overlay"))
    p_base = sub.add_parser("base", help="make debian:trixie-slim (debootstrap) if missing")
    p_base.add_argument("--force", action="store_true")
    p_base.add_argument("--driver", default=os.environ.get("SWG_BUILDAH_DRIVER", "overlay"))
    p_digest = sub.add_parser("digest", help="print the inputs digest of each image")
    p_digest.add_argument("names", nargs="*")
    sub.add_parser("index", help="print the index")
    sub.add_parser("lock", help="regenerate the hashed lock files (needs PyPI)")
    p_ctr = sub.add_parser("ctr-import", help="import every archive into containerd")
    p_ctr.add_argument("--address", required=True)
    p_ctr.add_argument("--namespace", default="k8s.io")
    p_ctr.add_argument("--ctr", default="ctr")
    args = parser.parse_args(argv)
    unknown = set(getattr(args, "names", None) or ()) - set(NAMES)
    if unknown:
        parser.error(f"unknown image(s) {sorted(unknown)}: choose from {', '.join(NAMES)}")
    layout = Layout(cache_root())
    if args.command == "build":
        started = time.monotonic()
        try:
            build(
                args.names or NAMES,
                layout=layout,
                force=args.force,
                driver=args.driver,
                jobs=args.jobs,
            )
        except (OSError, RuntimeError, subprocess.CalledProcessError) as error:
            _log(f"failed: {error}")
            return 1
        _log(f"done in {time.monotonic() - started:.1f} s; index: {layout.index}")
        print(layout.index)
    elif args.command == "base":
        need_buildah()
        with rootfs._lock(layout.lock):
            info = ensure_base(Buildah(layout, args.driver), force=args.force)
        print(info["imageId"])
    elif args.command == "digest":
        base = base_manifest(layout) or {}
        base_id = str(base.get("rootfsDigest", "none"))
        for spec in specs(args.names or NAMES):
            print(spec.ref, inputs_digest(spec, base_id=base_id, builder=Buildah.version()))
    elif args.command == "index":
        print(json.dumps(read_index(layout.index).to_json(), indent=2, sort_keys=True))
    elif args.command == "lock":
        regenerate_locks()
    elif args.command == "ctr-import":
        refs = ctr_import(
            read_index(layout.index), address=args.address, namespace=args.namespace, ctr=args.ctr
        )
        print("\n".join(refs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
