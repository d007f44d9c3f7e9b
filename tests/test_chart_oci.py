"""`helm package` and `helm push` of the chart to an OCI registry (CNCF distribution, built by
build-binaries.sh, listening on 127.0.0.1 only), then `helm show chart` and `helm template`
from the registry: what a platform team pulling the chart from its own registry does."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from chart_support import CHART, go_tool, run_helm


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    config = tmp_path / "registry.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "version": 0.1,
                "log": {"level": "warn"},
                "storage": {"filesystem": {"rootdirectory": str(tmp_path / "data")}},
                "http": {"addr": f"127.0.0.1:{port}"},
            }
        )
    )
    log = (tmp_path / "registry.log").open("w")
    process = subprocess.Popen(
        [str(go_tool("registry", "registry")), "serve", str(config)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise AssertionError(
                    f"the registry did not listen: {(tmp_path / 'registry.log').read_text()}"
                ) from None
            time.sleep(0.1)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def test_the_packaged_chart_is_pushed_to_and_installed_from_an_oci_registry(
    registry: str, tmp_path: Path
) -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    run_helm("package", str(CHART), "--destination", str(tmp_path))
    archive = tmp_path / f"swg-operator-{chart['version']}.tgz"
    assert archive.is_file()
    env_dirs = ["--registry-config", str(tmp_path / "registry.json")]
    pushed = run_helm("push", str(archive), f"oci://{registry}/charts", "--plain-http", *env_dirs)
    assert "Digest: sha256:" in pushed.stdout + pushed.stderr
    reference = f"oci://{registry}/charts/swg-operator"
    shown = run_helm(
        "show", "chart", reference, "--version", chart["version"], "--plain-http", *env_dirs
    )
    assert yaml.safe_load(shown.stdout)["appVersion"] == chart["appVersion"]
    rendered = run_helm(
        "template", "swg", reference, "--version", chart["version"], "--plain-http", *env_dirs
    )
    kinds = {doc["kind"] for doc in yaml.safe_load_all(rendered.stdout) if doc}
    # The packaged chart carries the CRD (files/crds is a link into crds/).
    assert {"Deployment", "CustomResourceDefinition"} <= kinds
