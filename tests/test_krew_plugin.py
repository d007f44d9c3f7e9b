"""The krew manifest of `kubectl swg` (plugins/krew/swg.yaml) and the archive devtools/krew.py
builds: krew's structural rules, the sha256 of a fresh build, and the extracted archive running
on its own (no site-packages) against a real log store."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from devtools import krew
from devtools.processes import Proc, free_port, wait_http

from swg_logstore.shipper import StoreClient
from swg_operator import __version__

SEMVER = re.compile(r"^v\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$")


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    return krew.load_manifest()


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("krew") / krew.ARCHIVE_NAME
    return out, krew.build_archive(out)


@pytest.fixture(scope="module")
def unpacked(archive: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("installed")
    with tarfile.open(archive[0]) as tar:
        tar.extractall(root, filter="data")
    return root


def test_manifest_has_what_krew_requires(manifest: dict[str, Any]) -> None:
    assert manifest["apiVersion"] == "krew.googlecontainertools.github.com/v1alpha2"
    assert manifest["kind"] == "Plugin"
    # krew: the name must match the file name and ^[\w-]+$; kubectl finds `kubectl-<name>`.
    assert manifest["metadata"]["name"] == krew.MANIFEST.stem == "swg"
    spec = manifest["spec"]
    assert SEMVER.match(spec["version"]), spec["version"]
    assert spec["version"] == f"v{__version__}"
    assert spec["shortDescription"]
    assert not re.search(r"[\r\n]", spec["shortDescription"])
    assert spec["homepage"].startswith("https://")
    assert spec["platforms"]


def test_every_platform_has_a_selector_uri_sha256_and_bin(manifest: dict[str, Any]) -> None:
    for platform in manifest["spec"]["platforms"]:
        selector = platform["selector"]
        labels = selector.get("matchLabels") or {}
        expressions = selector.get("matchExpressions") or []
        assert labels or expressions, "krew refuses an empty selector"
        keys = set(labels) | {e["key"] for e in expressions}
        assert keys <= {"os", "arch"}, keys
        assert labels == krew.PLATFORM
        assert platform["uri"].startswith("https://")
        assert platform["uri"].endswith("/" + krew.ARCHIVE_NAME)
        assert f"/{manifest['spec']['version']}/" in platform["uri"]
        assert re.fullmatch(r"[a-f0-9]{64}", platform["sha256"])
        assert platform["bin"] == krew.BIN == f"kubectl-{manifest['metadata']['name']}"
        assert "files" not in platform or all(f["from"] and f["to"] for f in platform["files"])


def test_the_build_is_reproducible_and_its_sha256_goes_into_the_manifest(
    archive: tuple[Path, str], tmp_path: Path
) -> None:
    """The committed sha256 is the released archive's (`make krew-plugin` at release time):
    any later change to the packages changes the archive, so it is not compared here; what is
    checked is that the same tree builds the same bytes and that the build records them."""
    path, sha256 = archive
    assert hashlib.sha256(path.read_bytes()).hexdigest() == sha256
    assert krew.build_archive(tmp_path / krew.ARCHIVE_NAME) == sha256
    copy = tmp_path / "swg.yaml"
    copy.write_text(krew.MANIFEST.read_text())
    krew.set_sha256(sha256, copy)
    assert krew.load_manifest(copy)["spec"]["platforms"][0]["sha256"] == sha256


def test_the_archive_holds_the_bin_executable_at_its_top(archive: tuple[Path, str]) -> None:
    with tarfile.open(archive[0]) as tar:
        members = {m.name: m for m in tar.getmembers()}
        launcher = tar.extractfile(members[krew.BIN])
        assert launcher is not None
        text = launcher.read().decode()
    assert members[krew.BIN].mode == 0o755
    assert text.startswith("#!/usr/bin/env python3\n")
    assert "kubectl_main" in text
    assert "lib/swg_operator/commands/kubectl.py" in members
    assert all(m.mtime == 0 and m.uid == 0 for m in members.values())
    assert not any(name.endswith(".pyc") for name in members)
    assert set(n.split("/")[0] for n in members) == {krew.BIN, "lib"}


def run_plugin(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The extracted plugin as krew runs it, with this Python but none of its site-packages
    (-S -I): only what the archive carries."""
    return subprocess.run(
        [sys.executable, "-S", "-I", str(root / krew.BIN), *args],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


@pytest.fixture
def log_store(tmp_path: Path) -> Iterator[str]:
    http_port, ingest_port = free_port(), free_port()
    store = Proc(
        [
            sys.executable, "-m", "swg_logstore", "serve", "--root", str(tmp_path / "s"),
            "--tenant", "acme", "--service-code", "SWG-1", "--host", "127.0.0.1",
            "--http-port", str(http_port), "--ingest-port", str(ingest_port),
            "--metrics-port", str(free_port()),
        ],
        tmp_path / "store.log",
    )  # fmt: skip
    store.start()
    try:
        wait_http(f"http://127.0.0.1:{http_port}/healthz")
        client = StoreClient(f"http://127.0.0.1:{ingest_port}", timeout=10)
        now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        client.send("s1", 1, [{"off": 1, "record": {"ts": now, **RECORD}}])
        client.close()
        yield f"http://127.0.0.1:{http_port}"
    finally:
        store.kill()


RECORD = {
    "type": "access", "id": "r1:access", "requestId": "r1", "clientIp": "127.0.0.1",
    "method": "GET", "url": "http://a.test/", "host": "a.test", "status": 200, "bytesOut": 804,
    "bytesIn": 136, "durationMs": 42, "decision": "allow", "category": None, "list": "default",
    "policy": "tenant", "av": "clean",
}  # fmt: skip


def test_the_unpacked_plugin_downloads_logs_on_its_own(unpacked: Path, log_store: str) -> None:
    done = run_plugin(unpacked, "logs", "acme", "--server", log_store, "-q", "--local-time",
                      "Europe/Paris")  # fmt: skip
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["requestId"] for r in records] == ["r1"]
    assert records[0]["tsLocal"].endswith(("+01:00", "+02:00"))


def test_the_unpacked_plugin_reads_a_kubeconfig_and_names_a_missing_one(
    unpacked: Path, tmp_path: Path
) -> None:
    missing = tmp_path / "nope.kubeconfig"
    for command in ("status", "notices", "logs"):
        done = run_plugin(unpacked, command, "acme", "--kubeconfig", str(missing))
        assert done.returncode == 1, (command, done.stderr)
        assert f"{missing} not found; check --kubeconfig" in done.stderr, (command, done.stderr)
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: x\n"
        f"clusters: [{{name: c, cluster: {{server: 'https://127.0.0.1:{free_port()}'}}}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: x, context: {cluster: c, user: u}}]\n"
    )
    for command in ("status", "notices"):
        done = run_plugin(unpacked, command, "acme", "--kubeconfig", str(kubeconfig))
        assert done.returncode == 1, (command, done.stderr)
        assert "error: the cluster did not answer" in done.stderr, (command, done.stderr)
        assert "Traceback" not in done.stderr


def test_set_sha256_rewrites_only_that_line(tmp_path: Path) -> None:
    copy = tmp_path / "swg.yaml"
    copy.write_text(krew.MANIFEST.read_text())
    krew.set_sha256("a" * 64, copy)
    before, after = krew.MANIFEST.read_text().splitlines(), copy.read_text().splitlines()
    changed = [(b, a) for b, a in zip(before, after, strict=True) if b != a]
    assert len(changed) <= 1
    assert krew.load_manifest(copy)["spec"]["platforms"][0]["sha256"] == "a" * 64
