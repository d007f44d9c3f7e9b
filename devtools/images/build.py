"""Building the images with buildah: each to a docker-archive tar, those whose inputs changed."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from devtools import rootfs
from devtools.images.archive import archive_image_id
from devtools.images.base import ensure_base
from devtools.images.buildah import Buildah, need_buildah
from devtools.images.index import Entry, Index, is_current, read_index, write_index
from devtools.images.inputs import (
    NAMES,
    REPO,
    ImageSpec,
    Layout,
    cache_root,
    inputs_digest,
    progress,
    specs,
)

# The CA bundle handed to builds as the secret `ca-bundle` (never stored in an image): lets pip
# reach PyPI from a machine behind a TLS-inspecting egress proxy. Absent: pip's default trust.
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


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
    progress(f"building {spec.ref} (log: {log})")
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
    progress(f"built {spec.ref} {entry.image_id[:19]} in {seconds} s: {archive}")
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
                progress(f"{spec.ref} is current ({digest[:16]})")
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
