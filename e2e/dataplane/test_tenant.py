"""The data plane run from exactly what `swg-operator render` produces for a test tenant
(testdata/tenant), driven with real traffic through Squid, c-icap and clamd.

Clients connect from 127.0.0.x (curl --interface): 127.0.0.0/25 is the tenant's allowedCIDRs,
127.0.0.64/26 the named policy "kids", 127.0.0.200 an outsider.
"""

from __future__ import annotations

import json
import re
import signal
from datetime import datetime, timedelta

import pytest

from e2e.dataplane.conftest import (
    TENANT_DATA,
    TENANT_SIGNATURES,
    RenderTenant,
    StartDataplane,
)
from e2e.dataplane.payloads import Payload
from e2e.dataplane.pki import subject_of
from e2e.dataplane.stack import DEFAULT_TEST_NAMES, DataplaneStack
from swg_logstore import records
from swg_logstore.formats import SQUID_ACCESS_LOG_PATH

pytestmark = pytest.mark.dataplane

NAMES = (*DEFAULT_TEST_NAMES, "social.test")
# Names that resolve to addresses the proxy must never reach.
FORBIDDEN_NAMES = {
    "metadata.test": "169.254.169.254",
    "internal.test": "10.1.2.3",
    "loop.test": "127.0.0.5",
}
INFECTED = ["eicar.com", "eicar.zip", "eicar-embedded-1.5MiB.bin"]
EICAR_SIGNATURE = "Custom.Test.EICAR-NDB.UNOFFICIAL"
CUSTOM_SIGNATURE = "Swg.Test.CustomSample.UNOFFICIAL"
OUTSIDER = "127.0.0.200"
KIDS_CLIENT = "127.0.0.70"


def start_tenant(
    start_dataplane: StartDataplane, render_tenant: RenderTenant, tenant_file: str, label: str
) -> DataplaneStack:
    return start_dataplane(
        render_tenant(TENANT_DATA / tenant_file),
        label=label,
        names=NAMES,
        extra_hosts=FORBIDDEN_NAMES,
        extra_conf=TENANT_SIGNATURES,
    )


@pytest.fixture(scope="module")
def tenant(start_dataplane: StartDataplane, render_tenant: RenderTenant) -> DataplaneStack:
    return start_tenant(start_dataplane, render_tenant, "tenant.yaml", "tenant")


def category_on_page(text: str) -> str:
    match = re.search(r"<th>Category</th><td><b>([^<]*)</b>", text)
    return match.group(1) if match else ""


def rule_on_page(text: str) -> str:
    match = re.search(r"<th>Blocked by</th><td><b>([^<]*)</b>", text)
    return match.group(1) if match else ""


def policy_on_page(text: str) -> str:
    match = re.search(r"<th>Policy</th><td><b>([^<]*)</b>", text)
    return match.group(1) if match else ""


def access_record(stack: DataplaneStack, pattern: str) -> records.Record:
    """The tenant's `access` record (what the log store keeps) of the first access log line
    matching ``pattern``."""
    line = stack.wait_for_log("proxy", SQUID_ACCESS_LOG_PATH, pattern)
    return records.squid_access_records(line)[0]


# ------------------------------------------------------------------------------ the files
def test_rendered_squid_conf_parses(tenant: DataplaneStack) -> None:
    result = tenant.run_in_pod("proxy", ["/usr/local/bin/swg-proxy-entrypoint", "-k", "parse"])
    assert result.returncode == 0, result.stderr[-2000:]
    assert "ERROR" not in result.stderr
    assert "WARNING" not in result.stderr, [
        line for line in result.stderr.splitlines() if "WARNING" in line
    ]


def test_clamd_probe_of_the_antivirus_pod_answers(tenant: DataplaneStack) -> None:
    # The exec probe the anti-virus Deployment gives its clamd container.
    argv = ["clamdscan", "--ping", "1", "--config-file=/etc/swg/conf/clamd.conf"]
    result = tenant.run_in_pod("antivirus", argv)
    assert result.returncode == 0, result.stderr
    assert "PONG" in result.stdout


# ------------------------------------------------------------------------------ clients
def test_client_inside_allowed_cidrs_is_served(tenant: DataplaneStack) -> None:
    assert tenant.request("http://clean.test/files/hello.txt", source="127.0.0.9").status == 200


def test_client_outside_allowed_cidrs_is_refused_by_squid(tenant: DataplaneStack) -> None:
    assert tenant.origin is not None
    response = tenant.request("http://clean.test/outsider", source=OUTSIDER)
    assert response.status == 403
    assert ("GET", "clean.test", "/outsider") not in tenant.origin.requests()


# ------------------------------------------------------------------------------ URL filtering
@pytest.mark.parametrize(
    ("url", "rule", "category"),
    [
        ("http://casino.test/", "category", "gambling"),
        ("http://www.poker.test/", "category", "gambling"),
        ("http://malware.test/x", "category", "malware"),
        ("http://clean.test/malware-path/payload", "category", "malware"),  # a catalogue URL
        ("http://denied.test/", "deny-domain", "-"),
        ("http://clean.test/forbidden/thing", "deny-regex", "-"),
    ],
)
def test_blocked_destination_gets_block_page_naming_it(
    tenant: DataplaneStack, url: str, rule: str, category: str
) -> None:
    response = tenant.request(url)
    assert response.status == 403
    assert "Access blocked by your organisation's web policy" in response.text
    assert (rule_on_page(response.text), category_on_page(response.text)) == (rule, category)
    assert policy_on_page(response.text) == "tenant"
    assert "SWG-TEST-0001" in response.text


def test_allow_list_domain_is_served_despite_its_category(tenant: DataplaneStack) -> None:
    response = tenant.request("http://www.casino.test/hello")
    assert response.status == 200
    assert response.text == "origin www.casino.test /hello\n"


def test_named_policy_applies_to_its_own_clients_only(tenant: DataplaneStack) -> None:
    blocked = tenant.request("http://social.test/", source=KIDS_CLIENT)
    assert blocked.status == 403
    assert category_on_page(blocked.text) == "social-networks"
    assert policy_on_page(blocked.text) == "kids"
    assert tenant.request("http://social.test/", source="127.0.0.9").status == 200
    # the tenant-wide rules still apply to the policy's clients
    assert tenant.request("http://casino.test/", source=KIDS_CLIENT).status == 403


# ------------------------------------------------------------------------------ anti-virus
@pytest.mark.parametrize("name", ["clean-1KiB.bin", "clean-5MiB.bin"])
def test_clean_download_passes_intact(
    tenant: DataplaneStack, dataplane_payloads: dict[str, Payload], name: str
) -> None:
    response = tenant.request(f"http://clean.test/files/{name}")
    assert response.status == 200, response.error
    assert response.sha256 == dataplane_payloads[name].sha256


@pytest.mark.parametrize("name", INFECTED)
def test_eicar_download_is_blocked(tenant: DataplaneStack, name: str) -> None:
    response = tenant.request(f"http://clean.test/files/{name}")
    assert response.status == 403
    assert EICAR_SIGNATURE in response.text


def test_clean_upload_reaches_origin_intact(
    tenant: DataplaneStack, dataplane_payloads: dict[str, Payload]
) -> None:
    payload = dataplane_payloads["clean-5MiB.bin"]
    response = tenant.request("http://clean.test/upload", upload=payload.path)
    assert response.status == 200, response.error
    assert json.loads(response.body) == {"size": payload.size, "sha256": payload.sha256}


@pytest.mark.parametrize("name", INFECTED)
def test_eicar_upload_is_blocked_before_origin(
    tenant: DataplaneStack, dataplane_payloads: dict[str, Payload], name: str
) -> None:
    assert tenant.origin is not None
    payload = dataplane_payloads[name]
    response = tenant.request(f"http://clean.test/upload/{name}", method="PUT", upload=payload.path)
    assert response.status == 403
    assert EICAR_SIGNATURE in response.text
    assert all(upload.sha256 != payload.sha256 for upload in tenant.origin.uploads())


def test_tenant_custom_signature_is_used(tenant: DataplaneStack) -> None:
    response = tenant.request("http://clean.test/files/custom-sample.bin")
    assert response.status == 403
    assert CUSTOM_SIGNATURE in response.text
    record = access_record(tenant, r"custom-sample\.bin")
    assert (record["av"], record["avSignature"]) == ("infected", CUSTOM_SIGNATURE)


def test_bypass_destination_skips_filtering_and_scanning(tenant: DataplaneStack) -> None:
    response = tenant.request("http://bypass.test/files/eicar.com")
    assert response.status == 200
    record = access_record(tenant, r"bypass\.test/files/eicar\.com")
    assert (record["decision"], record["list"]) == ("bypass", "bypass-domain")
    assert record["av"] == "not-scanned"


# ------------------------------------------------------------------------------ HTTPS
def test_https_is_decrypted_with_the_tenant_ca(
    tenant: DataplaneStack, dataplane_payloads: dict[str, Payload]
) -> None:
    response = tenant.request(
        "https://clean.test/files/clean-5MiB.bin", cacert=tenant.pki.inspection_ca_cert
    )
    assert response.status == 200, response.error
    assert response.sha256 == dataplane_payloads["clean-5MiB.bin"].sha256
    assert "Test Tenant Inspection CA" in subject_of(response.certs[0])


@pytest.mark.parametrize("name", ["eicar.com", "eicar-embedded-1.5MiB.bin"])
def test_eicar_over_https_is_blocked(tenant: DataplaneStack, name: str) -> None:
    response = tenant.request(
        f"https://clean.test/files/{name}", cacert=tenant.pki.inspection_ca_cert
    )
    assert response.status == 403
    assert EICAR_SIGNATURE in response.text


def test_blocked_category_over_https_gets_block_page(tenant: DataplaneStack) -> None:
    response = tenant.request("https://casino.test/", cacert=tenant.pki.inspection_ca_cert)
    assert response.status == 403
    assert category_on_page(response.text) == "gambling"


@pytest.mark.parametrize("host", ["noinspect.test", "bypass.test"])
def test_do_not_inspect_and_bypass_are_spliced(tenant: DataplaneStack, host: str) -> None:
    response = tenant.request(f"https://{host}/files/hello.txt", cacert=tenant.pki.origin_ca_cert)
    assert response.status == 200, response.error
    assert "Test Origin CA" in subject_of(response.certs[0])


# ------------------------------------------------------------------------------ SSRF guards
@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://metadata.test/",
        "http://10.0.0.1/",
        "http://internal.test/",
        "http://127.0.0.1:1344/",
        "http://antivirus:1344/",
        "http://loop.test/",
        "http://[::1]/",
        "https://127.0.0.5/",
    ],
)
def test_forbidden_destinations_are_refused_before_connecting(
    tenant: DataplaneStack, url: str
) -> None:
    # Inside the loopback-only namespace a connection attempt to 169.254/16 or 10/8 fails with
    # a network error (503), never with Squid's 403 page: a 403 naming the category proves the
    # ACL refused it first.
    response = tenant.request(url, insecure=True)
    assert response.status == 403, response.error
    assert rule_on_page(response.text) == "restricted"


# ------------------------------------------------------------------------------ access log
def test_access_log_lines_are_the_tenant_log_format_with_rule_and_verdict(
    tenant: DataplaneStack,
) -> None:
    # Squid logs URLs without their query (strip_query_terms): tell requests apart by host.
    tenant.request("http://casino.test/logged")
    tenant.request("http://www.clean.test/files/eicar.zip")
    tenant.request("http://www.clean.test/files/hello.txt")
    blocked = access_record(tenant, r"casino\.test/logged")
    infected = access_record(tenant, r"www\.clean\.test/files/eicar\.zip")
    clean = access_record(tenant, r"www\.clean\.test/files/hello\.txt")
    assert (blocked["decision"], blocked["list"], blocked["category"], blocked["status"]) == (
        "block",
        "category",
        "gambling",
        403,
    )
    assert (blocked["policy"], blocked["av"]) == ("tenant", "not-scanned")
    assert (infected["av"], infected["avSignature"], infected["status"]) == (
        "infected",
        EICAR_SIGNATURE,
        403,
    )
    assert (clean["decision"], clean["list"], clean["av"], clean["status"]) == (
        "allow",
        "default",
        "clean",
        200,
    )
    for entry in tenant.access_log():  # every line as Squid wrote it
        assert entry["v"] == 1
        assert {"t", "rid", "client", "method", "url", "status", "decision", "list"} <= set(entry)
        (record, *_) = records.squid_access_records(json.dumps(entry))
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", str(record["ts"]))
        assert datetime.fromisoformat(str(record["ts"])).utcoffset() == timedelta(0)
        assert record["requestId"]


# ------------------------------------------------------------------------------ failures
def wait_exited(stack: DataplaneStack, daemon: str, *, timeout: float = 30.0) -> None:
    process = stack.daemons[daemon].process
    process.wait(timeout=timeout)


def test_fail_closed_dead_scanner_means_5xx_and_bypass_keeps_working(
    start_dataplane: StartDataplane, render_tenant: RenderTenant
) -> None:
    stack = start_tenant(start_dataplane, render_tenant, "tenant.yaml", "failclosed")
    try:
        assert stack.request("http://clean.test/files/hello.txt").status == 200
        stack.stop_daemon("clamd")
        assert 500 <= stack.request("http://clean.test/files/hello.txt").status < 600
        assert stack.request("http://bypass.test/files/hello.txt").status == 200
        assert stack.request("http://casino.test/").status == 403
        # c-icap stops itself once clamd is gone; Squid still refuses to pass unscanned data.
        wait_exited(stack, "c-icap")
        assert 500 <= stack.request("http://clean.test/files/hello.txt").status < 600
        assert 500 <= stack.request("http://clean.test/upload", method="PUT").status < 600
        assert stack.request("http://bypass.test/files/hello.txt").status == 200
    finally:
        stack.close()


def test_fail_open_dead_scanner_passes_and_logs_not_scanned(
    start_dataplane: StartDataplane,
    render_tenant: RenderTenant,
    dataplane_payloads: dict[str, Payload],
) -> None:
    stack = start_tenant(start_dataplane, render_tenant, "tenant-failopen.yaml", "failopen")
    try:
        assert stack.request("http://clean.test/files/eicar.com").status == 403
        stack.stop_daemon("clamd")
        wait_exited(stack, "c-icap")
        response = stack.request("http://www.clean.test/files/clean-5MiB.bin")
        assert response.status == 200
        assert response.sha256 == dataplane_payloads["clean-5MiB.bin"].sha256
        record = access_record(stack, r"www\.clean\.test/files/clean-5MiB\.bin")
        assert (record["av"], record["status"]) == ("not-scanned", 200)
    finally:
        stack.close()


def test_without_https_inspection_nothing_is_decrypted(
    start_dataplane: StartDataplane, render_tenant: RenderTenant
) -> None:
    stack = start_tenant(start_dataplane, render_tenant, "tenant-failopen.yaml", "noinspect")
    try:
        response = stack.request(
            "https://clean.test/files/hello.txt", cacert=stack.pki.origin_ca_cert
        )
        assert response.status == 200, response.error
        assert "Test Origin CA" in subject_of(response.certs[0])
        # domain filtering still applies to the CONNECT
        refused = stack.request("https://casino.test/", cacert=stack.pki.origin_ca_cert)
        assert refused.status != 200
    finally:
        stack.close()


def test_squid_stops_within_the_deployment_grace_period(
    start_dataplane: StartDataplane, render_tenant: RenderTenant
) -> None:
    config = render_tenant(TENANT_DATA / "tenant.yaml")
    conf = (config / "squid.conf").read_text()
    match = re.search(r"^shutdown_lifetime (\d+) seconds$", conf, re.M)
    assert match is not None
    lifetime = int(match.group(1))
    stack = start_tenant(start_dataplane, render_tenant, "tenant.yaml", "shutdown")
    try:
        took = stack.stop_daemon("squid", sig=signal.SIGTERM)
        # render.workloads gives preStop 5 s + shutdown_lifetime + 5 s
        assert took < lifetime + 5, f"Squid took {took:.1f}s (shutdown_lifetime {lifetime}s)"
        for name in ("c-icap", "clamd"):
            assert stack.stop_daemon(name) < 30  # ANTIVIRUS_GRACE_SECONDS
    finally:
        stack.close()
