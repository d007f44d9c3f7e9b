"""Small container images written without a builder: an OCI image layout in a tar, one layer.

No registry is reachable and no Docker engine runs on these machines, so the worker node's
sandbox (pause) image, its busybox (local-path-provisioner's helper pods), CoreDNS and the
NetworkPolicy enforcer are packed here from static binaries and imported into containerd
(`ctr -n k8s.io images import`). The archives are reproducible (sorted entries, mtime 0, owner
root) and cached by the digest of their inputs, so a warm start writes nothing.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
GROUP = "root:x:0:\nnobody:x:65534:\n"


@dataclass(frozen=True)
class ImageSpec:
    """One image: its name (`registry/repo:tag`), files and process settings.

    `files` maps an absolute path in the image to a file on this machine (copied with its mode);
    `texts` to literal content (mode 0644); `symlinks` to a link target.
    """

    name: str
    files: Mapping[str, Path] = field(default_factory=dict)
    texts: Mapping[str, str] = field(default_factory=dict)
    symlinks: Mapping[str, str] = field(default_factory=dict)
    entrypoint: Sequence[str] = ()
    cmd: Sequence[str] = ()
    env: Sequence[str] = ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",)
    user: str = ""
    workdir: str = "/"

    def input_digest(self) -> str:
        """A digest of everything the archive is made of (sources by path, size and mtime)."""
        sources = {
            dest: [str(src), src.stat().st_size, src.stat().st_mtime_ns, src.stat().st_mode]
            for dest, src in self.files.items()
        }
        document = {
            "format": 1,
            "name": self.name,
            "files": sources,
            "texts": dict(self.texts),
            "symlinks": dict(self.symlinks),
            "entrypoint": list(self.entrypoint),
            "cmd": list(self.cmd),
            "env": list(self.env),
            "user": self.user,
            "workdir": self.workdir,
        }
        return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()

    @property
    def file_stem(self) -> str:
        return self.name.replace("/", "_").replace(":", "_")


def _parents(path: str) -> list[str]:
    parts = PurePosixPath(path).parts[1:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def _layer(spec: ImageSpec) -> bytes:
    entries: dict[str, tuple[str, Any]] = {"etc/passwd": ("text", PASSWD)}
    entries["etc/group"] = ("text", GROUP)
    entries["tmp"] = ("dir", 0o1777)
    for dest, src in spec.files.items():
        entries[dest.lstrip("/")] = ("file", src)
    for dest, text in spec.texts.items():
        entries[dest.lstrip("/")] = ("text", text)
    for dest, target in spec.symlinks.items():
        entries[dest.lstrip("/")] = ("link", target)
    dirs = {parent for name in entries for parent in _parents("/" + name)}
    for name in dirs:
        entries.setdefault(name, ("dir", 0o755))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(entries):
            kind, value = entries[name]
            info = tarfile.TarInfo(name)
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            if kind == "dir":
                info.type = tarfile.DIRTYPE
                info.mode = value
                tar.addfile(info)
            elif kind == "link":
                info.type = tarfile.SYMTYPE
                info.linkname = value
                info.mode = 0o777
                tar.addfile(info)
            else:
                data = value.read_bytes() if kind == "file" else value.encode()
                info.size = len(data)
                info.mode = (value.stat().st_mode & 0o7777) if kind == "file" else 0o644
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _blob(tar: tarfile.TarFile, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    info = tarfile.TarInfo(f"blobs/sha256/{digest}")
    info.size, info.mtime, info.mode = len(data), 0, 0o644
    tar.addfile(info, io.BytesIO(data))
    return f"sha256:{digest}"


def write_oci_archive(spec: ImageSpec, out: Path) -> Path:
    """Write `spec` as an OCI image layout tar at `out` (atomically) and return `out`."""
    layer = _layer(spec)
    layer_digest = "sha256:" + hashlib.sha256(layer).hexdigest()
    process: dict[str, Any] = {"Env": list(spec.env), "WorkingDir": spec.workdir}
    if spec.entrypoint:
        process["Entrypoint"] = list(spec.entrypoint)
    if spec.cmd:
        process["Cmd"] = list(spec.cmd)
    if spec.user:
        process["User"] = spec.user
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": "1970-01-01T00:00:00Z",
        "config": process,
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "swg-operator e2e"}],
    }
    config_bytes = json.dumps(config, sort_keys=True).encode()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with tarfile.open(tmp, mode="w", format=tarfile.PAX_FORMAT) as tar:
        config_digest = _blob(tar, config_bytes)
        _blob(tar, layer)
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config_bytes)},
            "layers": [{"mediaType": OCI_LAYER, "digest": layer_digest, "size": len(layer)}],
        }
        manifest_bytes = json.dumps(manifest, sort_keys=True).encode()
        manifest_digest = _blob(tar, manifest_bytes)
        index = {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {
                    "mediaType": OCI_MANIFEST,
                    "digest": manifest_digest,
                    "size": len(manifest_bytes),
                    "platform": {"architecture": "amd64", "os": "linux"},
                    "annotations": {
                        "io.containerd.image.name": spec.name,
                        "org.opencontainers.image.ref.name": spec.name.rsplit(":", 1)[-1],
                    },
                }
            ],
        }
        for name, data in (
            ("oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode()),
            ("index.json", json.dumps(index, sort_keys=True).encode()),
        ):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))
    os.replace(tmp, out)
    return out


def cached_archive(spec: ImageSpec, cache: Path) -> Path:
    """The archive of `spec` under `cache`, written only when its inputs changed."""
    out = cache / f"{spec.file_stem}-{spec.input_digest()[:16]}.tar"
    if out.exists():
        return out
    for stale in cache.glob(f"{spec.file_stem}-*.tar"):
        stale.unlink(missing_ok=True)
    return write_oci_archive(spec, out)


def busybox_spec(name: str, busybox: Path, applets: Sequence[str]) -> ImageSpec:
    """A busybox image from a static busybox binary, with a link per applet in /bin."""
    links = {f"/bin/{applet}": "busybox" for applet in applets if applet != "busybox"}
    return ImageSpec(name=name, files={"/bin/busybox": busybox}, symlinks=links, cmd=("/bin/sh",))
