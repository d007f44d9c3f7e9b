"""The ``debian:trixie-slim`` base made by debootstrap, trimmed like the official slim image.

The root filesystem is made by debootstrap (Debian 13, minbase; the suite, mirror and keyring
of `devtools.rootfs`), trimmed as debuerreotype trims the official image, and imported into
buildah's storage as ``docker.io/library/debian:trixie-slim`` so that
``FROM debian:trixie-slim`` resolves locally.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from devtools import rootfs
from devtools.images.buildah import Buildah
from devtools.images.inputs import Layout, progress

BASE_REF = "docker.io/library/debian:trixie-slim"  # what `FROM debian:trixie-slim` resolves to
# Bump when the base recipe (debootstrap, trimming) changes.
BASE_VERSION = "1"

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
        progress(f"imported {BASE_REF} {info['imageId'][:19]} from {tarball}")
        return info
    started = time.monotonic()
    tmp = entry.with_name(f".{key}.build-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    log = tmp / "build.log"
    root = tmp / "root"
    progress(f"debootstrap {rootfs.SUITE} minbase into {root} (log: {log})")
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
    progress(f"made {BASE_REF} {info['imageId'][:19]} in {info['buildSeconds']} s")
    return info
