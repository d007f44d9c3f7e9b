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
* freshclam through the tenant's proxy (no mirror in the cluster): freshclam.conf names the
  proxy; real Squid, HTTPS inspection on and no scanner running, lets an anti-virus source
  CONNECT to the mirror's name (spliced: the origin's own certificate; logged
  `signature-mirror`) and refuses it every other name, port, plain-HTTP request and a false
  TLS server name; a source neither client nor anti-virus gets nothing.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
import yaml

from e2e.dataplane import client
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


def settings_file(directory: Path, antivirus: dict[str, object], **extra: object) -> Path:
    settings = yaml.safe_load(TENANT_SETTINGS.read_text())
    settings["antivirus"] = antivirus
    settings.update(extra)
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
    # HTTPS: through a proxy freshclam 1.4 tunnels every request (CONNECT), also to http://
    # mirrors, which Squid refuses (CONNECT to port 80; docs/antivirus.md).
    mirror = {"privateMirrors": [f"https://{MIRROR}"], "checksPerDay": 24}
    # No mirror in the cluster: freshclam goes through the tenant's proxy. freshclam connects
    # to it from 127.0.0.1, which stands here for the cluster's networks (the anti-virus pods).
    config = render_tenant(
        TENANT_DATA / "tenant.yaml",
        settings=settings_file(
            work,
            {"signatureSource": "freshclam", "freshclam": mirror},
            clusterCidrs=["127.0.0.1/32"],
        ),
    )
    # Squid only (no scanner: the downloads are not scanned), the origin standing in for the
    # mirror, the pod layout; the proxy Service's name resolves to Squid.
    return start_dataplane(
        config,
        label="freshclam",
        names=(*DEFAULT_TEST_NAMES, MIRROR),
        extra_hosts={"proxy.swg-dataplane-test.svc.cluster.local": "127.0.0.1"},
        daemons=("squid",),
        extra_conf=TENANT_SIGNATURES,
    )


def test_rendered_freshclam_conf_names_the_private_mirror(freshclam_pod: DataplaneStack) -> None:
    conf = (freshclam_pod.conf / "freshclam.conf").read_text()
    assert f"PrivateMirror https://{MIRROR}\n" in conf
    assert "DatabaseMirror" not in conf
    assert f"DatabaseDirectory {DB_DIR}\n" in conf
    assert "ConcurrentDatabaseReload yes" in (freshclam_pod.conf / "clamd.conf").read_text()


def test_freshclam_asks_the_private_mirror_through_the_proxy_as_the_image_user(
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
    # It asked through the tenant's proxy: the requests are in the tenant's access log.
    entry = freshclam_pod.wait_for_access_log(r'"list":"signature-mirror"')
    assert entry["url"] == f"{MIRROR}:443"
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


# ------------------------------------------------------------------------------ via the proxy
# freshclam with no mirror in the cluster goes through the tenant's proxy (docs/antivirus.md,
# "The way to the mirror"). Squid tells the anti-virus pods by the cluster's networks: here a
# slice of loopback outside the tenant's allowedCIDRs (127.0.0.0/25) stands for them.
AV_SOURCE = "127.0.0.200"
PROXY_MIRROR = "mirror.test"


@pytest.fixture(scope="module")
def mirror_via_proxy(
    start_dataplane: StartDataplane,
    render_tenant: RenderTenant,
    tmp_path_factory: pytest.TempPathFactory,
) -> DataplaneStack:
    work = tmp_path_factory.mktemp("mirror-via-proxy")
    settings = yaml.safe_load(TENANT_SETTINGS.read_text())
    settings["clusterCidrs"] = ["127.0.0.128/25"]
    settings["antivirus"] = {
        "signatureSource": "freshclam",
        "freshclam": {"privateMirrors": [f"https://{PROXY_MIRROR}/clamav"]},
    }
    path = work / "settings.yaml"
    path.write_text(yaml.safe_dump(settings))
    # The test tenant inspects HTTPS and fails closed; no scanner runs: the mirror's downloads
    # must neither be decrypted nor wait for a scanner (clamd cannot start without them).
    config = render_tenant(TENANT_DATA / "tenant.yaml", settings=path)
    return start_dataplane(
        config, label="mirrorproxy", names=(*DEFAULT_TEST_NAMES, PROXY_MIRROR), daemons=("squid",)
    )


def _tunnel(stack: DataplaneStack, connect: str, sni: str, source: str) -> client.TunnelResponse:
    assert stack.netns is not None
    host = connect.rsplit(":", 1)[0]
    return client.tunnel(
        stack.netns, stack.proxy_address, connect=connect, sni=sni, host=host, source=source
    )


def refused(response: client.TunnelResponse) -> bool:
    """Squid refused the CONNECT: a 403, or (the port being an ssl-bump port) a 200 followed by
    its 403 page inside the tunnel; never the origin's page."""
    if response.connect_status == 403:
        return True
    return response.status == 403 and not response.body.startswith(b"origin ")


def test_freshclam_conf_names_the_tenant_proxy(mirror_via_proxy: DataplaneStack) -> None:
    conf = (mirror_via_proxy.conf / "freshclam.conf").read_text().splitlines()
    assert "HTTPProxyServer proxy.swg-dataplane-test.svc.cluster.local" in conf
    assert "HTTPProxyPort 3128" in conf


def test_the_antivirus_source_reaches_the_mirror_spliced_and_unscanned(
    mirror_via_proxy: DataplaneStack,
) -> None:
    stack = mirror_via_proxy
    # curl trusting only the origin's CA: the tunnel is spliced, never bumped with the tenant CA.
    response = stack.request(
        f"https://{PROXY_MIRROR}/files/clean-1KiB.bin",
        source=AV_SOURCE,
        cacert=stack.pki.origin_ca_cert,
    )
    assert response.status == 200, response.error
    entry = stack.wait_for_access_log(r'"list":"signature-mirror"')
    assert entry["client"] == AV_SOURCE
    assert entry["decision"] == "bypass"


def test_the_antivirus_source_reaches_nothing_but_the_mirror(
    mirror_via_proxy: DataplaneStack,
) -> None:
    stack = mirror_via_proxy
    for url in ("http://clean.test/", f"http://{PROXY_MIRROR}/clamav/daily.cvd"):
        assert stack.request(url, source=AV_SOURCE).status == 403, url
    other = _tunnel(stack, "clean.test:443", sni="clean.test", source=AV_SOURCE)
    assert refused(other), other
    # The mirror's name in CONNECT, another in the TLS server name: terminated.
    lying = _tunnel(stack, f"{PROXY_MIRROR}:443", sni="clean.test", source=AV_SOURCE)
    assert lying.connect_status == 200
    assert not lying.handshake or lying.status == 0, lying
    # Another port of the mirror's name: refused.
    assert refused(_tunnel(stack, f"{PROXY_MIRROR}:8443", PROXY_MIRROR, AV_SOURCE))
    # A source neither a client nor in the cluster's networks gets nothing, the mirror included.
    outsider = _tunnel(stack, f"{PROXY_MIRROR}:443", sni=PROXY_MIRROR, source="127.0.1.1")
    assert refused(outsider), outsider
