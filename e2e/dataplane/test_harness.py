"""The harness proves itself with the configuration of the data-plane trial (testdata/trial):
if these pass, a failure with the operator's rendered configuration is the configuration's."""

from __future__ import annotations

import json
import re
import socket
from datetime import datetime
from pathlib import Path

import pytest

from e2e.dataplane.conftest import TESTDATA, StartDataplane
from e2e.dataplane.payloads import Payload
from e2e.dataplane.pki import subject_of
from e2e.dataplane.stack import DataplaneStack

pytestmark = pytest.mark.dataplane

ACCESS_LOG = "/var/lib/swg/squid/logs/access.json"
INFECTED = ["eicar.com", "eicar.zip", "eicar-embedded-1.5MiB.bin"]
SIGNATURE = "Custom.Test.EICAR-NDB.UNOFFICIAL"


def test_namespace_has_only_loopback(trial_dataplane: DataplaneStack) -> None:
    assert trial_dataplane.netns is not None
    trial_dataplane.netns.check_isolated()
    names = trial_dataplane.netns.call(lambda: sorted(n for _, n in socket.if_nameindex()))
    assert names == ["lo"]


def test_daemons_run_as_the_image_user(trial_dataplane: DataplaneStack) -> None:
    for name, daemon in trial_dataplane.daemons.items():
        status = Path(f"/proc/{daemon.process.pid}/status").read_text()
        uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
        assert uid_line.split()[1:] == ["10001"] * 4, f"{name}: {uid_line}"


@pytest.mark.parametrize("name", ["hello.txt", "clean-1KiB.bin", "clean-5MiB.bin"])
def test_clean_download_passes_intact(
    trial_dataplane: DataplaneStack, dataplane_payloads: dict[str, Payload], name: str
) -> None:
    response = trial_dataplane.request(f"http://clean.test/files/{name}")
    assert response.status == 200, response.error
    assert response.sha256 == dataplane_payloads[name].sha256


@pytest.mark.parametrize("name", INFECTED)
def test_eicar_download_is_blocked(trial_dataplane: DataplaneStack, name: str) -> None:
    response = trial_dataplane.request(f"http://clean.test/files/{name}")
    assert response.status == 403
    assert "VIRUS FOUND" in response.text
    assert SIGNATURE in response.text


def test_clean_upload_reaches_origin_intact(
    trial_dataplane: DataplaneStack, dataplane_payloads: dict[str, Payload]
) -> None:
    payload = dataplane_payloads["clean-5MiB.bin"]
    response = trial_dataplane.request("http://clean.test/upload", upload=payload.path)
    assert response.status == 200, response.error
    assert json.loads(response.body) == {"size": payload.size, "sha256": payload.sha256}


@pytest.mark.parametrize("name", INFECTED)
def test_eicar_upload_is_blocked_before_origin(
    trial_dataplane: DataplaneStack, dataplane_payloads: dict[str, Payload], name: str
) -> None:
    assert trial_dataplane.origin is not None
    payload = dataplane_payloads[name]
    response = trial_dataplane.request(
        f"http://clean.test/upload/{name}", method="PUT", upload=payload.path
    )
    assert response.status == 403
    assert SIGNATURE in response.text
    assert all(up.sha256 != payload.sha256 for up in trial_dataplane.origin.uploads())


@pytest.mark.parametrize(
    ("url", "category"),
    [
        ("http://www.casino.test/", "gambling"),
        ("http://poker.test/", "gambling"),
        ("http://malware.test/x", "malware"),
        ("http://clean.test/forbidden/thing", "url-regex"),
    ],
)
def test_blocked_destination_gets_block_page(
    trial_dataplane: DataplaneStack, url: str, category: str
) -> None:
    assert trial_dataplane.origin is not None
    response = trial_dataplane.request(url)
    assert response.status == 403
    assert "Access blocked by your organisation's web policy" in response.text
    assert f"Category: <b>{category}</b>" in response.text
    host, path = url.split("/", 3)[2], "/" + url.split("/", 3)[3]
    assert (host, path) not in [(h, p) for _, h, p in trial_dataplane.origin.requests()]


def test_https_is_inspected_with_the_tenant_ca(
    trial_dataplane: DataplaneStack, dataplane_payloads: dict[str, Payload]
) -> None:
    payload = dataplane_payloads["clean-5MiB.bin"]
    response = trial_dataplane.request(
        "https://clean.test/files/clean-5MiB.bin", cacert=trial_dataplane.pki.inspection_ca_cert
    )
    assert response.status == 200, response.error
    assert response.sha256 == payload.sha256
    assert "Test Tenant Inspection CA" in subject_of(response.certs[0])


def test_eicar_over_https_is_blocked(trial_dataplane: DataplaneStack) -> None:
    response = trial_dataplane.request(
        "https://clean.test/files/eicar.zip", cacert=trial_dataplane.pki.inspection_ca_cert
    )
    assert response.status == 403
    assert SIGNATURE in response.text


def test_bypass_destination_is_spliced_and_not_scanned(trial_dataplane: DataplaneStack) -> None:
    response = trial_dataplane.request(
        "https://bypass.test/files/eicar.com", cacert=trial_dataplane.pki.origin_ca_cert
    )
    assert response.status == 200, response.error
    assert "Test Origin CA" in subject_of(response.certs[0])


def test_access_log_is_json_with_utc_timestamps(trial_dataplane: DataplaneStack) -> None:
    trial_dataplane.request("http://www.casino.test/logged")
    line = trial_dataplane.wait_for_log("proxy", ACCESS_LOG, r"www\.casino\.test/logged")
    entry = json.loads(line)
    assert entry["category"] == "gambling"
    assert entry["decision"] == "block"
    assert entry["status"] == 403
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", str(entry["ts"]))
    datetime.fromisoformat(str(entry["ts"]))
    for record in trial_dataplane.json_log(ACCESS_LOG):
        assert isinstance(record, dict)


def test_dead_clamd_fails_closed_and_bypass_still_works(start_dataplane: StartDataplane) -> None:
    stack = start_dataplane(TESTDATA / "trial", label="failclosed")
    try:
        assert stack.request("http://clean.test/files/hello.txt").status == 200
        stack.stop_daemon("clamd")
        response = stack.request("http://clean.test/files/hello.txt")
        assert 500 <= response.status < 600
        assert stack.request("http://bypass.test/files/hello.txt").status == 200
        assert stack.request("http://casino.test/").status == 403
        stack.stop_daemon("c-icap")
        assert 500 <= stack.request("http://clean.test/files/hello.txt").status < 600
        assert stack.request("http://bypass.test/files/hello.txt").status == 200
        # shutdown_lifetime is 2 s in the trial configuration: Squid must be gone within the
        # grace period the Deployment gives (shutdown_lifetime + 5 s).
        assert stack.stop_daemon("squid") < 2 + 5
    finally:
        stack.close()
