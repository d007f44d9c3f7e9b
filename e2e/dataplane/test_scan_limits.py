"""What the anti-virus does with what it cannot scan, with real Squid, c-icap and clamd run from
what `swg-operator render` writes for the scan-limit tenants (testdata/tenant/tenant-limits*.yaml:
`spec.antivirus.maxScanSize: 1Mi`, fail closed and fail open).

The declared limit is the one that applies: an object just under it is scanned to its last byte
(EICAR at its end is found); an object over it and an encrypted archive are not scanned, so they
are blocked by default and logged as such (verdict `over-limit` / `encrypted`, never `clean`);
with `failOpen: true` an object whose declared length is over the limit is served and logged
`not-scanned` (an encrypted archive is still blocked: the scanner cannot pass what it reports).
A scanner that dies never lets anything through unscanned while the tenant is fail closed.
"""

from __future__ import annotations

import contextlib
import json
import signal
import time
from collections.abc import Iterator

import pytest

from e2e.dataplane.conftest import TENANT_DATA, TENANT_SIGNATURES, RenderTenant, StartDataplane
from e2e.dataplane.payloads import SCAN_LIMIT, Payload
from e2e.dataplane.stack import DaemonStartError, DataplaneStack
from swg_logstore import records
from swg_logstore.formats import CICAP_ANTIVIRUS_LOG_PATH, SQUID_ACCESS_LOG_PATH

pytestmark = pytest.mark.dataplane

EICAR_SIGNATURE = "Custom.Test.EICAR-NDB.UNOFFICIAL"
ENCRYPTED = "eicar-encrypted.zip"
UNDER_LIMIT_EICAR = "eicar-at-end-under-limit.bin"
OVER_LIMIT_EICAR = "eicar-at-end-over-limit.bin"
CLEAN_UNDER_LIMIT = "clean-under-limit.bin"


def start(
    start_dataplane: StartDataplane, render_tenant: RenderTenant, tenant_file: str, label: str
) -> DataplaneStack:
    config = render_tenant(TENANT_DATA / tenant_file)
    # the fixtures are sized from the limit the tenant declares
    assert "maxScanSize: 1Mi" in (TENANT_DATA / tenant_file).read_text()
    assert SCAN_LIMIT == 1024 * 1024
    return start_dataplane(config, label=label, extra_conf=TENANT_SIGNATURES)


@pytest.fixture(scope="module")
def closed(
    start_dataplane: StartDataplane, render_tenant: RenderTenant
) -> Iterator[DataplaneStack]:
    stack = start(start_dataplane, render_tenant, "tenant-limits.yaml", "limits")
    yield stack
    stack.close()


@pytest.fixture(scope="module")
def open_(start_dataplane: StartDataplane, render_tenant: RenderTenant) -> Iterator[DataplaneStack]:
    stack = start(start_dataplane, render_tenant, "tenant-limits-failopen.yaml", "limits-open")
    yield stack
    stack.close()


def access_record(stack: DataplaneStack, url_pattern: str) -> records.Record:
    line = stack.wait_for_log("proxy", SQUID_ACCESS_LOG_PATH, url_pattern)
    return records.squid_access_records(line)[0]


def antivirus_record(stack: DataplaneStack, url_pattern: str) -> records.Record:
    line = stack.wait_for_log("antivirus", CICAP_ANTIVIRUS_LOG_PATH, url_pattern)
    record = records.cicap_antivirus_record(line)
    assert record is not None
    return record


# ------------------------------------------------------------------------------ fail closed
def test_encrypted_zip_holding_eicar_is_blocked_and_logged_encrypted(
    closed: DataplaneStack,
) -> None:
    response = closed.request(f"http://clean.test/files/{ENCRYPTED}")
    assert response.status == 403
    assert "Heuristics.Encrypted.Zip" in response.text
    access = access_record(closed, rf"clean\.test/files/{ENCRYPTED}")
    assert (access["av"], access["avSignature"]) == ("encrypted", "Heuristics.Encrypted.Zip")
    scan = antivirus_record(closed, rf"clean\.test/files/{ENCRYPTED}")
    assert (scan["verdict"], scan["signature"]) == ("encrypted", "Heuristics.Encrypted.Zip")


def test_eicar_at_the_end_of_an_object_just_under_the_limit_is_found(
    closed: DataplaneStack, dataplane_payloads: dict[str, Payload]
) -> None:
    assert SCAN_LIMIT - 2048 < dataplane_payloads[UNDER_LIMIT_EICAR].size <= SCAN_LIMIT
    response = closed.request(f"http://clean.test/files/{UNDER_LIMIT_EICAR}")
    assert response.status == 403
    assert EICAR_SIGNATURE in response.text
    access = access_record(closed, rf"clean\.test/files/{UNDER_LIMIT_EICAR}")
    assert (access["av"], access["avSignature"]) == ("infected", EICAR_SIGNATURE)


def test_object_over_the_limit_is_blocked_and_logged_over_limit(
    closed: DataplaneStack, dataplane_payloads: dict[str, Payload]
) -> None:
    assert dataplane_payloads[OVER_LIMIT_EICAR].size > SCAN_LIMIT
    response = closed.request(f"http://clean.test/files/{OVER_LIMIT_EICAR}")
    assert response.status == 403
    assert "Heuristics.Limits.Exceeded" in response.text
    access = access_record(closed, rf"clean\.test/files/{OVER_LIMIT_EICAR}")
    assert access["av"] == "over-limit"
    assert str(access["avSignature"]).startswith("Heuristics.Limits.Exceeded.")
    scan = antivirus_record(closed, rf"clean\.test/files/{OVER_LIMIT_EICAR}")
    assert scan["verdict"] == "over-limit"


def test_upload_over_the_limit_is_blocked_before_the_origin(
    closed: DataplaneStack, dataplane_payloads: dict[str, Payload]
) -> None:
    assert closed.origin is not None
    payload = dataplane_payloads[OVER_LIMIT_EICAR]
    response = closed.request("http://clean.test/upload/over-limit", upload=payload.path)
    assert response.status == 403
    assert all(upload.sha256 != payload.sha256 for upload in closed.origin.uploads())


def test_c_icap_probe_of_the_antivirus_pod_sees_the_engine(closed: DataplaneStack) -> None:
    probe = closed.run_in_pod("antivirus", ["swg-antivirus-entrypoint", "c-icap-ready"])
    assert probe.returncode == 0, (probe.stdout, probe.stderr)


def test_clean_object_under_the_limit_is_served_intact_and_logged_clean(
    closed: DataplaneStack, dataplane_payloads: dict[str, Payload]
) -> None:
    response = closed.request(f"http://clean.test/files/{CLEAN_UNDER_LIMIT}")
    assert response.status == 200, response.error
    assert response.sha256 == dataplane_payloads[CLEAN_UNDER_LIMIT].sha256
    access = access_record(closed, rf"clean\.test/files/{CLEAN_UNDER_LIMIT}")
    assert access["av"] == "clean"
    assert antivirus_record(closed, rf"clean\.test/files/{CLEAN_UNDER_LIMIT}")["verdict"] == (
        "clean"
    )


# ------------------------------------------------------------------------------ fail open
def test_fail_open_serves_an_object_over_the_limit_and_logs_it_not_scanned(
    open_: DataplaneStack, dataplane_payloads: dict[str, Payload]
) -> None:
    response = open_.request(f"http://clean.test/files/{OVER_LIMIT_EICAR}")
    assert response.status == 200, response.error
    assert response.sha256 == dataplane_payloads[OVER_LIMIT_EICAR].sha256
    access = access_record(open_, rf"clean\.test/files/{OVER_LIMIT_EICAR}")
    assert (access["av"], access["status"]) == ("not-scanned", 200)
    # never a "clean" scan record for it
    scans = [
        records.cicap_antivirus_record(line)
        for line in open_.read_log("antivirus", CICAP_ANTIVIRUS_LOG_PATH).splitlines()
        if OVER_LIMIT_EICAR in line
    ]
    assert all(scan is None or scan["verdict"] != "clean" for scan in scans)


def test_fail_open_still_finds_eicar_just_under_the_limit(open_: DataplaneStack) -> None:
    response = open_.request(f"http://clean.test/files/{UNDER_LIMIT_EICAR}")
    assert response.status == 403
    assert EICAR_SIGNATURE in response.text


def test_fail_open_blocks_an_encrypted_zip_and_logs_it_encrypted(open_: DataplaneStack) -> None:
    """Encryption shows only once clamd opens the archive, and the scanner has no way to pass
    what it reports (c-icap blocks every detection): even fail open, an encrypted archive is
    blocked, and logged `encrypted`, never `clean` (docs/antivirus.md)."""
    response = open_.request(f"http://www.clean.test/files/{ENCRYPTED}")
    assert response.status == 403
    access = access_record(open_, rf"www\.clean\.test/files/{ENCRYPTED}")
    assert (access["av"], access["avSignature"]) == ("encrypted", "Heuristics.Encrypted.Zip")
    scan = antivirus_record(open_, rf"www\.clean\.test/files/{ENCRYPTED}")
    assert scan["verdict"] == "encrypted"


def test_fail_open_squid_conf_with_the_length_acls_parses_cleanly(open_: DataplaneStack) -> None:
    result = open_.run_in_pod("proxy", ["/usr/local/bin/swg-proxy-entrypoint", "-k", "parse"])
    assert result.returncode == 0, result.stderr[-2000:]
    assert "swg_av_too_large" in (open_.conf / "squid.conf").read_text()
    assert "WARNING" not in result.stderr, [
        line for line in result.stderr.splitlines() if "WARNING" in line
    ]


def test_fail_open_passes_an_upload_over_the_limit_unscanned(
    open_: DataplaneStack, dataplane_payloads: dict[str, Payload]
) -> None:
    payload = dataplane_payloads[OVER_LIMIT_EICAR]
    response = open_.request("http://clean.test/upload/open-over-limit", upload=payload.path)
    assert response.status == 200, response.error
    assert json.loads(response.body) == {"size": payload.size, "sha256": payload.sha256}
    access_record(open_, r"clean\.test/upload/open-over-limit")  # the transaction is over
    # no upload scan (the origin's answer, a download, is scanned: the access record's `av`
    # is that scan's)
    scans = [
        records.cicap_antivirus_record(line)
        for line in open_.read_log("antivirus", CICAP_ANTIVIRUS_LOG_PATH).splitlines()
        if "/upload/open-over-limit" in line
    ]
    assert [scan["direction"] for scan in scans if scan is not None] == ["download"]


def test_fail_open_blocks_a_chunked_upload_over_the_limit(
    open_: DataplaneStack, dataplane_payloads: dict[str, Payload]
) -> None:
    """Without a Content-Length the body goes to the scanner, and clamd reports it over the
    limit: blocked even fail open, and logged over-limit."""
    assert open_.origin is not None
    payload = dataplane_payloads[OVER_LIMIT_EICAR]
    response = open_.request(
        "http://clean.test/upload/open-chunked",
        method="PUT",
        upload=payload.path,
        headers={"Transfer-Encoding": "chunked"},
    )
    assert response.status == 403
    assert ("PUT", "clean.test", "/upload/open-chunked") not in open_.origin.requests()
    scan = antivirus_record(open_, r"clean\.test/upload/open-chunked")
    assert (scan["direction"], scan["verdict"]) == ("upload", "over-limit")


# ------------------------------------------------------------------------------ dead scanner
def test_eicar_sent_right_after_clamd_is_killed_is_never_served(
    start_dataplane: StartDataplane, render_tenant: RenderTenant
) -> None:
    stack = start(start_dataplane, render_tenant, "tenant-limits.yaml", "clamd-kill")
    try:
        assert stack.request("http://clean.test/files/eicar.com").status == 403
        stack.stop_daemon("clamd", sig=signal.SIGKILL)
        statuses = []
        deadline = time.monotonic() + 10  # longer than the c-icap watchdog takes
        while time.monotonic() < deadline:
            response = stack.request("http://clean.test/files/eicar.com", timeout=10)
            statuses.append(response.status)
            assert response.status != 200, f"EICAR served after clamd died: {statuses}"
        assert statuses
        assert all(s == 403 or 500 <= s < 600 for s in statuses), statuses
    finally:
        stack.close()


def test_c_icap_restarted_while_clamd_is_down_never_serves_unscanned(
    start_dataplane: StartDataplane, render_tenant: RenderTenant
) -> None:
    """clamd killed: its socket file stays, the watchdog stops c-icap, and the kubelet starts
    c-icap again at once while clamd is still down (or still loading its database). A c-icap
    started without clamd has no scan engine and lets everything pass (204), for as long as it
    runs: it must not run. Once clamd is back, scanning resumes."""
    stack = start(start_dataplane, render_tenant, "tenant-limits.yaml", "cicap-restart")
    try:
        stack.stop_daemon("clamd", sig=signal.SIGKILL)
        stack.daemons["c-icap"].process.wait(timeout=60)  # the watchdog stops it
        stack.daemons.pop("c-icap")
        # c-icap itself, started with clamd down, answers on its port without an engine: the
        # pod's probe says so (1), where a TCP probe would call it ready
        probe = stack.run_in_pod(
            "antivirus",
            [
                "sh",
                "-c",
                "rm -f /var/lib/swg/c-icap/c-icap.pid /var/lib/swg/c-icap/c-icap.ctl; "
                # its ServerLog reopens /dev/stderr: a file of its own, not the harness's pipe
                "/usr/bin/c-icap -N -f /etc/swg/conf/c-icap.conf 2>/tmp/c-icap.err & sleep 3; "
                "swg-antivirus-entrypoint c-icap-ready; rc=$?; kill $!; wait; exit $rc",
            ],
        )
        assert probe.returncode == 1, (probe.stdout, probe.stderr)
        with contextlib.suppress(DaemonStartError):  # it may refuse to start at all
            stack.start_daemon("c-icap", timeout=3)
        statuses = []
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            response = stack.request("http://clean.test/files/eicar.com", timeout=10)
            statuses.append(response.status)
            assert response.status != 200, f"EICAR served with clamd down: {statuses}"
        stack.start_daemon("clamd")
        recovered = time.monotonic() + 60
        while stack.request("http://clean.test/files/hello.txt").status != 200:
            assert time.monotonic() < recovered, "scanning did not resume with clamd back"
            time.sleep(0.5)
        assert stack.request("http://clean.test/files/eicar.com").status == 403
    finally:
        stack.close()


def test_fail_open_with_clamd_dead_never_logs_clean(
    start_dataplane: StartDataplane, render_tenant: RenderTenant
) -> None:
    """Fail open, clamd killed, c-icap not stopped yet: whatever Squid does with an object
    (refuse it, or pass it unscanned), the logs never call it clean."""
    stack = start(start_dataplane, render_tenant, "tenant-limits-failopen.yaml", "open-dead")
    try:
        assert stack.request("http://www.clean.test/files/eicar.com").status == 403
        stack.stop_daemon("clamd", sig=signal.SIGKILL)
        for host in ("clean.test", "bypass.test"):
            stack.request(f"http://{host}/files/{CLEAN_UNDER_LIMIT}", timeout=10)
        access = access_record(stack, rf"//clean\.test/files/{CLEAN_UNDER_LIMIT}")
        if access["status"] == 200:
            assert access["av"] == "not-scanned"
        else:
            assert access["av"] == "error"
        for line in stack.read_log("antivirus", CICAP_ANTIVIRUS_LOG_PATH).splitlines():
            scan = records.cicap_antivirus_record(line)
            if scan is not None and CLEAN_UNDER_LIMIT in str(scan["url"]):
                assert scan["verdict"] != "clean", scan
        # the control: a bypassed destination is served and logged not scanned
        bypassed = access_record(stack, rf"bypass\.test/files/{CLEAN_UNDER_LIMIT}")
        assert (bypassed["status"], bypassed["av"]) == (200, "not-scanned")
    finally:
        stack.close()
