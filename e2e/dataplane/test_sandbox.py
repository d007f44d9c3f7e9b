"""The sandbox option (`options.sandbox`) against a real analyser: a second c-icap + clamd with a
signature set of its own (e2e/dataplane/analyser.py), reached over `icaps://` with its
certificate checked.

* Anti-virus on, sandbox fail closed: the tenant's scanner knows only EICAR; the analyser also
  knows the project's custom sample. EICAR is refused by the scanner, the custom sample, which
  the scanner lets through, by the analyser; the sandbox log records the analyser's verdicts.
  With the analyser down a download is refused (5xx), never delivered unanalysed, and the
  sandbox log records the failure.
* Anti-virus off, sandbox fail open: the analyser alone adapts responses (it refuses both
  samples); with it down downloads pass and the sandbox log records each one as an error.
"""

from __future__ import annotations

import subprocess
import time

import pytest

from e2e.dataplane.analyser import (
    ANALYSER_ADDRESS,
    ANALYSER_HOST,
    analyser_conf,
    start_analyser,
    stop_analyser,
)
from e2e.dataplane.conftest import TENANT_DATA, TENANT_SIGNATURES, RenderTenant, StartDataplane
from e2e.dataplane.stack import DEFAULT_TEST_NAMES, DataplaneStack
from swg_logstore.formats import SQUID_SANDBOX_LOG_PATH
from swg_logstore.records import Record, squid_sandbox_record

pytestmark = pytest.mark.dataplane

PLATFORM = [p for p in TENANT_SIGNATURES if p.name.startswith("platform-")]
CUSTOM_SAMPLE = "http://clean.test/files/custom-sample.bin"
CUSTOM_SIGNATURE = "Swg.Test.CustomSample.UNOFFICIAL"


def _sandbox_records(stack: DataplaneStack) -> list[Record]:
    text = stack.read_log("proxy", SQUID_SANDBOX_LOG_PATH)
    return [r for line in text.splitlines() if line and (r := squid_sandbox_record(line))]


def _start(
    start_dataplane: StartDataplane,
    render_tenant: RenderTenant,
    tenant: str,
    *,
    daemons: tuple[str, ...],
    label: str,
) -> DataplaneStack:
    config = render_tenant(TENANT_DATA / tenant)
    stack = start_dataplane(
        config,
        label=label,
        names=DEFAULT_TEST_NAMES,
        extra_hosts={ANALYSER_HOST: ANALYSER_ADDRESS},
        daemons=daemons,
        extra_conf=PLATFORM,  # the tenant's scanner: EICAR only
    )
    # The analyser: the rendered anti-virus configuration of the main test tenant, with every
    # test signature (EICAR and the custom sample).
    rendered = render_tenant(TENANT_DATA / "tenant.yaml")
    start_analyser(stack, analyser_conf(rendered, stack, TENANT_SIGNATURES))
    return stack


@pytest.fixture(scope="module")
def with_antivirus(start_dataplane: StartDataplane, render_tenant: RenderTenant) -> DataplaneStack:
    return _start(
        start_dataplane,
        render_tenant,
        "tenant-sandbox.yaml",
        daemons=("clamd", "c-icap", "squid"),
        label="sandbox-av",
    )


@pytest.fixture(scope="module")
def without_antivirus(
    start_dataplane: StartDataplane, render_tenant: RenderTenant
) -> DataplaneStack:
    return _start(
        start_dataplane,
        render_tenant,
        "tenant-sandbox-noav.yaml",
        daemons=("squid",),
        label="sandbox-noav",
    )


def test_the_analyser_refuses_what_the_scanner_lets_through(with_antivirus: DataplaneStack) -> None:
    stack = with_antivirus
    assert stack.request("http://clean.test/files/hello.txt").status == 200
    eicar = stack.request("http://clean.test/files/eicar.com")
    assert eicar.status == 403
    sample = stack.request(CUSTOM_SAMPLE)
    assert sample.status == 403, sample.text[:500]
    assert CUSTOM_SIGNATURE in sample.text
    # Over TLS to the analyser, and both verdicts in the sandbox log.
    stack.wait_for_log("proxy", SQUID_SANDBOX_LOG_PATH, "custom-sample")
    records = _sandbox_records(stack)
    verdicts = {(r["url"], r["verdict"], r["threat"]) for r in records}
    assert (CUSTOM_SAMPLE, "malicious", CUSTOM_SIGNATURE) in verdicts
    assert ("http://clean.test/files/hello.txt", "clean", None) in verdicts


def test_https_downloads_go_to_the_analyser_decrypted(with_antivirus: DataplaneStack) -> None:
    stack = with_antivirus
    response = stack.request(
        "https://clean.test/files/custom-sample.bin", cacert=stack.pki.inspection_ca_cert
    )
    assert response.status == 403
    assert CUSTOM_SIGNATURE in response.text


def test_fail_closed_without_the_analyser(with_antivirus: DataplaneStack) -> None:
    stack = with_antivirus
    stop_analyser(stack)
    try:
        response = stack.request("http://clean.test/files/clean-1KiB.bin")
        assert response.status >= 500, response.status
        line = stack.wait_for_log("proxy", SQUID_SANDBOX_LOG_PATH, "clean-1KiB")
        record = squid_sandbox_record(line)
        assert record is not None
        assert record["verdict"] == "error"
    finally:
        rendered = stack.workdir / "analyser-conf"
        start_analyser(stack, rendered)


def test_an_analyser_with_an_untrusted_certificate_gets_nothing(
    with_antivirus: DataplaneStack,
) -> None:
    """The analyser's certificate is checked: one no trusted CA signed (self-signed here) fails
    the ICAP transaction, and fail closed refuses the download."""
    stack = with_antivirus
    _wait_until_served(stack)  # the trusted analyser answers (after any earlier outage)
    conf = stack.workdir / "analyser-conf"
    saved = {name: (conf / name).read_bytes() for name in ("tls.crt", "tls.key")}
    stop_analyser(stack)
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", f"/CN={ANALYSER_HOST}", "-addext", f"subjectAltName=DNS:{ANALYSER_HOST}",
         "-keyout", str(conf / "tls.key"), "-out", str(conf / "tls.crt")],
        check=True, capture_output=True,
    )  # fmt: skip
    for name in saved:
        (conf / name).chmod(0o644)
    start_analyser(stack, conf)
    try:
        response = stack.request("http://clean.test/files/hello.txt?untrusted")
        assert response.status >= 500, response.status
    finally:
        stop_analyser(stack)
        for name, data in saved.items():
            (conf / name).write_bytes(data)
        start_analyser(stack, conf)
    _wait_until_served(stack)


def _wait_until_served(stack: DataplaneStack) -> None:
    """Until a clean download passes the analyser again (Squid retries a failed service after
    icap_service_revival_delay)."""
    deadline = time.monotonic() + 90
    while stack.request("http://clean.test/files/hello.txt").status != 200:
        assert time.monotonic() < deadline, "the analyser was not used again"
        time.sleep(1)


def test_sandbox_works_with_antivirus_off(without_antivirus: DataplaneStack) -> None:
    stack = without_antivirus
    conf = (stack.conf / "squid.conf").read_text()
    assert "swg_av_resp" not in conf
    assert stack.request("http://clean.test/files/hello.txt").status == 200
    for url in (CUSTOM_SAMPLE, "http://clean.test/files/eicar.com"):
        assert stack.request(url).status == 403, url


def test_fail_open_passes_and_logs_without_the_analyser(
    without_antivirus: DataplaneStack,
) -> None:
    stack = without_antivirus
    stop_analyser(stack)
    response = stack.request("http://clean.test/files/clean-1KiB.bin")
    assert response.status == 200
    line = stack.wait_for_log("proxy", SQUID_SANDBOX_LOG_PATH, "clean-1KiB")
    record = squid_sandbox_record(line)
    assert record is not None
    assert record["verdict"] == "error"
