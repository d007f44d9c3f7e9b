"""The images `make images` built (devtools/images/), checked as the node gets them: each
docker-archive tar of the index is unpacked and its programs run in a chroot as UID 10001, the
user the chart's and the renderer's pods run as. Needs root and a prior `make images`
(`make test-images` does both); skipped otherwise."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from devtools import images

pytestmark = pytest.mark.images

UID = 10001
ENTRYPOINTS = {
    "operator": ["swg-operator"],
    "proxy": ["/usr/local/bin/swg-proxy-entrypoint"],
    "antivirus": ["/usr/local/bin/swg-antivirus-entrypoint"],
    "logstore": ["python", "-m", "swg_logstore"],
}
# What each image must run as its unprivileged user: (argv, text expected in the output).
COMMANDS = {
    "operator": [
        (["swg-operator", "--version"], "swg-operator 0.1.0"),
        # the chart's `helm test` pod runs `python -c` with the standard library in this image
        (["python", "-c", "import urllib.request, sys; print(sys.version)"], "3.13"),
    ],
    "proxy": [(["squid", "-v"], "Squid Cache: Version 6.")],
    "antivirus": [(["clamd", "--version"], "ClamAV"), (["c-icap", "-V"], "")],
    "logstore": [
        (
            [
                "python",
                "-c",
                "import aiohttp, swg_logstore.server, "
                "swg_logstore.shipper, sys; print(sys.version)",
            ],
            "3.13",
        ),
        (["python", "-m", "swg_logstore", "--help"], "serve"),
    ],
}


def _index() -> images.Index:
    return images.read_index(images.Layout(images.cache_root()).index)


@pytest.fixture(scope="module")
def index() -> images.Index:
    if os.geteuid() != 0:
        pytest.skip("unpacking images and chroot need root")
    found = _index()
    if not found.images:
        pytest.skip("no images built: run `make images`")
    return found


@pytest.fixture(scope="module")
def roots(
    index: images.Index, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Path]]:
    out = {}
    for entry in index.images.values():
        root = tmp_path_factory.mktemp(entry.name) / "root"
        images.unpack(Path(entry.archive), root)
        out[entry.name] = root
    yield out
    for root in out.values():
        shutil.rmtree(root, ignore_errors=True)


def _entry(index: images.Index, name: str) -> images.Entry:
    [spec] = images.specs([name])
    entry = index.images.get(spec.ref)
    assert entry is not None, f"{spec.ref} is not in the index"
    return entry


@pytest.mark.parametrize("name", images.NAMES)
def test_archive_is_the_indexed_image_under_the_chart_ref(index: images.Index, name: str) -> None:
    entry = _entry(index, name)
    archive = Path(entry.archive)
    assert archive.is_file()
    assert images.archive_image_id(archive) == entry.image_id
    assert images.archive_manifest(archive)["RepoTags"] == [entry.ref]


@pytest.mark.parametrize("name", images.NAMES)
def test_user_and_entrypoint(index: images.Index, name: str) -> None:
    config = images.archive_config(Path(_entry(index, name).archive))
    assert config["User"] == f"{UID}:{UID}"
    assert config["Entrypoint"] == ENTRYPOINTS[name]


@pytest.mark.parametrize("name", images.NAMES)
def test_programs_run_as_the_pod_user(
    index: images.Index, roots: dict[str, Path], name: str
) -> None:
    root = roots[name]
    env = images.archive_config(Path(_entry(index, name).archive)).get("Env") or []
    for argv, expected in COMMANDS[name]:
        script = (
            f'set -e; mount -t proc proc "{root}/proc"; mount --rbind /dev "{root}/dev"; '
            f'exec chroot --userspec={UID}:{UID} "{root}" /usr/bin/env -i "$@"'
        )
        unshare = ["unshare", "--mount", "--propagation", "private", "--fork"]
        proc = subprocess.run(
            [*unshare, "sh", "-c", script, "sh", *env, *argv],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        output = proc.stdout + proc.stderr
        assert proc.returncode == 0, f"{argv}: {output}"
        assert expected in output, f"{argv}: {output}"


@pytest.mark.parametrize("name", images.NAMES)
def test_the_image_root_has_no_package_caches_or_docs(roots: dict[str, Path], name: str) -> None:
    root = roots[name]
    assert not any((root / "var/lib/apt/lists").glob("*_Packages*"))
    assert not any((root / "var/cache/apt/archives").glob("*.deb"))
    docs = [p for p in (root / "usr/share/doc").rglob("*") if p.is_file()]
    assert all(p.name == "copyright" for p in docs), docs[:5]
    assert not (root / "usr/share/man").exists() or not any((root / "usr/share/man").iterdir())


def _containerd_bin() -> Path | None:
    """containerd (with ctr beside it) from PATH, else the one the node tier builds in the cache."""
    found = shutil.which("containerd")
    if found:
        return Path(found)
    cached = sorted((images.cache_root() / "bin").glob("containerd-v*/containerd"))
    return cached[-1] if cached else None


def test_archives_import_into_containerd(index: images.Index, tmp_path: Path) -> None:
    """What the node does: `ctr -n k8s.io images import` of every tar into a containerd of our
    own (private socket and state, no CRI), then the refs resolve to the indexed image ids."""
    containerd = _containerd_bin()
    if containerd is None:
        pytest.skip("no containerd: the node tier builds it (e2e/cluster)")
    beside = containerd.with_name("ctr")
    ctr_path = beside if beside.exists() else Path(shutil.which("ctr") or "ctr")
    sock = tmp_path / "containerd.sock"
    config = tmp_path / "config.toml"
    config.write_text(
        "version = 3\n"
        f'root = "{tmp_path}/root"\nstate = "{tmp_path}/state"\n'
        'disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.cri.v1.images", '
        '"io.containerd.cri.v1.runtime"]\n'
        f'[grpc]\n  address = "{sock}"\n[ttrpc]\n  address = "{sock}.ttrpc"\n'
    )
    with (tmp_path / "containerd.log").open("wb") as log:
        daemon = subprocess.Popen(
            [str(containerd), "--config", str(config)], stdout=log, stderr=subprocess.STDOUT
        )
    try:
        for _ in range(100):
            if sock.exists():
                break
            time.sleep(0.1)
        assert sock.exists(), (tmp_path / "containerd.log").read_text()[-2000:]
        refs = images.ctr_import(index, address=str(sock), ctr=str(ctr_path))
        assert sorted(refs) == sorted(index.images)
        for ref, entry in index.images.items():
            manifest = (
                subprocess.run(
                    [
                        str(ctr_path),
                        "-a",
                        str(sock),
                        "-n",
                        "k8s.io",
                        "images",
                        "ls",
                        f"name=={ref}",
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                .stdout.split("\n")[1]
                .split()
            )
            assert manifest[0] == ref
            content = subprocess.run(
                [str(ctr_path), "-a", str(sock), "-n", "k8s.io", "content", "get", manifest[2]],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            assert json.loads(content)["config"]["digest"] == entry.image_id
    finally:
        daemon.terminate()
        daemon.wait(timeout=30)
        subprocess.run(["umount", "-R", str(tmp_path / "root")], check=False, capture_output=True)
