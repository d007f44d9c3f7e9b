"""Reading a docker-archive tar (manifest, config, image id, layers); importing into containerd."""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

from devtools.images.index import Index


def archive_image_id(archive: Path) -> str:
    """The image id (config digest) of a docker-archive tar, read from its manifest.json."""
    config = str(archive_manifest(archive)["Config"])
    return "sha256:" + Path(config).name.removesuffix(".json").removeprefix("sha256:")


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
