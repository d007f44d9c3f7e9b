"""The images `make images` built (e2e/images.py), checked as the node gets them: each
docker-archive tar of the index is unpacked and its programs run in a chroot as UID 10001, the
user the chart's and the renderer's pods run as. Needs root and a prior `make images`
(`make test-images` does both); skipped otherwise."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e import images

pytestmark = pytest.mark.images

UID = 10001
ENTRYPOINTS = {
    "operator": ["swg-operator"],
    "proxy": ["/usr/local/bin/swg-proxy-entrypoint"],
    "antivirus": ["/usr/local/bin/swg-antivirus-entrypoint"],
    "logstore": ["python", "-m", "swg_operator.logstore"],
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
                "import aiohttp, swg_operator.logstore.server, "
                "swg_operator.logstore.shipper, sys; print(sys.version)",
            ],
            "3.13",
        ),
        (["python", "-m", "swg_operator.logstore", "--help"], "serve"),
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
