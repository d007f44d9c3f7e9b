"""Where clamd's signatures come from (docs/antivirus.md), run for real: the anti-virus image's
entrypoint and the configuration `swg-operator render` writes for each signature source.

* configMap source: the platform's signature files, copied into the tenant namespace and
  projected beside the configuration as `platform-<key>`, are all clamd needs to start and block
  EICAR; nothing else (no public database, no tenant signatures) is loaded.
* freshclam source: the rendered freshclam.conf makes freshclam, as the image's non-root user on
  the pod's state directory, ask the platform's private mirror for the databases (the test
  origin stands in for the mirror: the public database cannot be downloaded here); the sidecar's
  startup probe (`database-ready`) succeeds only once the databases are there, and clamd's
  entrypoint refuses to start without them.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
import yaml

from e2e.dataplane.conftest import (
    TENANT_DATA,
    TENANT_SETTINGS,
    TENANT_SIGNATURES,
    RenderTenant,
    StartDataplane,
)
from e2e.dataplane.stack import DEFAULT_TEST_NAMES, UID, DataplaneStack
from swg_operator.render.signatures import PLATFORM_SIGNATURE_PREFIX

pytestmark = pytest.mark.dataplane

ENTRYPOINT = "/usr/local/bin/swg-antivirus-entrypoint"
DB_DIR = "/var/lib/swg/clamav/db"
EICAR_SIGNATURE = "Custom.Test.EICAR-NDB.UNOFFICIAL"
MIRROR = "mirror.test"
PLATFORM_FILES = [p for p in TENANT_SIGNATURES if p.name.startswith(PLATFORM_SIGNATURE_PREFIX)]


def settings_file(directory: Path, antivirus: dict[str, object]) -> Path:
    settings = yaml.safe_load(TENANT_SETTINGS.read_text())
    settings["antivirus"] = antivirus
    path = directory / "settings.yaml"
    path.write_text(yaml.safe_dump(settings))
    return path


# ------------------------------------------------------------------------------ configMap
@pytest.fixture(scope="module")
def platform_only(
    start_dataplane: StartDataplane,
    render_tenant: RenderTenant,
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[DataplaneStack, Path]:
    work = tmp_path_factory.mktemp("platform-signatures")
    platform = work / "configmap"  # the platform ConfigMap's keys: eicar.ndb
    platform.mkdir()
    for path in PLATFORM_FILES:
        shutil.copyfile(path, platform / path.name.removeprefix(PLATFORM_SIGNATURE_PREFIX))
    config = render_tenant(
        TENANT_DATA / "tenant-failopen.yaml",
        settings=settings_file(work, {"signatureSource": "configMap"}),
        platform_signatures=platform,
    )
    # What the pod projects: the rendered files and the platform copy, no tenant signatures.
    stack = start_dataplane(
        config, label="platformsigs", names=DEFAULT_TEST_NAMES, extra_conf=PLATFORM_FILES
    )
    return stack, config


def test_config_map_source_renders_a_copy_and_no_freshclam(
    platform_only: tuple[DataplaneStack, Path],
) -> None:
    _, config = platform_only
    assert not (config / "freshclam.conf").exists()
    manifests = config.parent / "manifests"
    (copy,) = [
        yaml.safe_load(p.read_text())
        for p in manifests.glob("*-configmap-antivirus-platform-signatures.yaml")
    ]
    assert sorted(copy["data"]) == ["eicar.ndb"]
    (deployment,) = [
        yaml.safe_load(p.read_text()) for p in manifests.glob("*-deployment-antivirus.yaml")
    ]
    pod = deployment["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["initContainers"]] == ["shipper"]


def test_platform_signatures_alone_let_clamd_start_and_block_eicar(
    platform_only: tuple[DataplaneStack, Path],
) -> None:
    stack, _ = platform_only
    response = stack.request("http://clean.test/files/eicar.com")
    assert response.status == 403
    assert EICAR_SIGNATURE in response.text
    # The tenant's own signature file is not there: its sample passes.
    assert stack.request("http://clean.test/files/custom-sample.bin").status != 403
    installed = sorted(p.name for p in stack.host_path("antivirus", DB_DIR).iterdir())
    assert installed == [p.name for p in PLATFORM_FILES]


# ------------------------------------------------------------------------------ freshclam
@pytest.fixture(scope="module")
def freshclam_pod(
    start_dataplane: StartDataplane,
    render_tenant: RenderTenant,
    tmp_path_factory: pytest.TempPathFactory,
) -> DataplaneStack:
    work = tmp_path_factory.mktemp("freshclam")
    mirror = {"privateMirrors": [f"http://{MIRROR}"], "checksPerDay": 24}
    config = render_tenant(
        TENANT_DATA / "tenant.yaml",
        settings=settings_file(work, {"signatureSource": "freshclam", "freshclam": mirror}),
    )
    # No daemon: the namespace, the origin (standing in for the mirror) and the pod layout.
    return start_dataplane(
        config,
        label="freshclam",
        names=(*DEFAULT_TEST_NAMES, MIRROR),
        daemons=(),
        extra_conf=TENANT_SIGNATURES,
    )


def test_rendered_freshclam_conf_names_the_private_mirror(freshclam_pod: DataplaneStack) -> None:
    conf = (freshclam_pod.conf / "freshclam.conf").read_text()
    assert f"PrivateMirror http://{MIRROR}\n" in conf
    assert "DatabaseMirror" not in conf
    assert f"DatabaseDirectory {DB_DIR}\n" in conf
    assert "ConcurrentDatabaseReload yes" in (freshclam_pod.conf / "clamd.conf").read_text()


def test_freshclam_asks_the_private_mirror_as_the_image_user(
    freshclam_pod: DataplaneStack,
) -> None:
    assert freshclam_pod.origin is not None
    # What `swg-antivirus-entrypoint freshclam` prepares before it starts the daemon.
    for directory in (DB_DIR, "/var/lib/swg/freshclam"):
        path = freshclam_pod.host_path("antivirus", directory)
        path.mkdir(parents=True, exist_ok=True)
        os.chown(path, UID, UID)
    result = freshclam_pod.run_in_pod(
        "antivirus",
        ["/usr/bin/freshclam", "--stdout", "--config-file=/etc/swg/conf/freshclam.conf"],
        timeout=120,
    )
    # The stand-in mirror serves no signed database: the update fails, after asking for it.
    assert result.returncode != 0, result.stdout
    asked = [(host, path) for _, host, path in freshclam_pod.origin.requests() if host == MIRROR]
    assert any(path.lstrip("/").startswith(("daily.", "main.")) for _, path in asked), (
        asked,
        result.stdout[-2000:],
    )
    assert "Permission denied" not in result.stdout + result.stderr
    # Nothing half-downloaded counts as a database.
    assert freshclam_pod.run_in_pod("antivirus", [ENTRYPOINT, "database-ready"]).returncode == 1


def test_clamd_waits_for_the_public_database_and_the_probe_sees_it(
    freshclam_pod: DataplaneStack,
) -> None:
    wait = ["/usr/bin/env", "SWG_CLAMAV_REQUIRED=main daily", "SWG_CLAMAV_WAIT_SECONDS=1"]
    started = time.monotonic()
    refused = freshclam_pod.run_in_pod("antivirus", [*wait, ENTRYPOINT, "clamd"], timeout=60)
    assert refused.returncode == 69, refused.stderr
    assert "signature database (main daily) absent" in refused.stderr
    assert time.monotonic() - started < 30
    # What freshclam leaves once a download is complete (names only: the probe looks no further).
    db = freshclam_pod.host_path("antivirus", DB_DIR)
    db.mkdir(parents=True, exist_ok=True)
    for name in ("main.cvd", "daily.cld"):
        (db / name).write_bytes(b"ClamAV-VDB:placeholder\n")
        os.chown(db / name, UID, UID)
    try:
        ready = freshclam_pod.run_in_pod("antivirus", [*wait, ENTRYPOINT, "database-ready"])
        assert ready.returncode == 0, ready.stderr
    finally:
        for name in ("main.cvd", "daily.cld"):
            (db / name).unlink()
