"""render_dataplane_files: what the data-plane config text says, without running the daemons
(e2e/dataplane runs them from the same output)."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from render_support import dataplane_files
from swg_logstore import formats
from swg_operator.api import OperatorSettings, SecureWebGatewaySpec, parse_spec
from swg_operator.catalogue import Catalogue, Category
from swg_operator.naming import Component
from swg_operator.quantities import parse_bytes
from swg_operator.render.cicap import CICAP_SERVICE_NAMES
from swg_operator.render.clamd import CLAMD_MAX_BYTES
from swg_operator.render.dataplane import (
    effective_scan_limit,
    render_dataplane_files,
    sandbox_service_name,
)
from swg_operator.render.squid import SHUTDOWN_SECONDS, greater_than_regex
from swg_operator.render.squid_acls import LIST_FILE_BYTES

CATALOGUE = Catalogue.of(
    [
        Category.build("gambling", domains=["casino.test", "poker.test", "www.casino.test"]),
        Category.build("malware", domains=["malware.test"], urls=["bad.test/path/"]),
        Category.build("social_networks", domains=["social.test"]),
    ]
)
SETTINGS = OperatorSettings()


def spec(**overrides: Any) -> SecureWebGatewaySpec:
    raw: dict[str, Any] = {
        "serviceCode": "SWG-0000042",
        "sizing": {"endpoints": 10, "requestsPerSecond": 10},
        "clients": {"allowedCIDRs": ["198.51.100.0/24"]},
    }
    raw.update(overrides)
    return parse_spec(raw)


def directives(text: str, name: str) -> list[str]:
    return [line for line in text.splitlines() if line.split(" ", 1)[0] == name]


def test_minimal_tenant_gets_proxy_and_antivirus_files() -> None:
    files = dataplane_files(spec(), catalogue=CATALOGUE, settings=SETTINGS)
    assert {"squid.conf", "ERR_SWG_BLOCKED", "c-icap.conf", "virus_scan.conf"} <= set(files)
    assert {"clamd.conf", "clamd_mod.conf"} <= set(files)
    grouped = render_dataplane_files(spec(), catalogue=CATALOGUE, settings=SETTINGS)
    assert {"squid.conf", "ERR_SWG_BLOCKED"} <= set(grouped[Component.PROXY])
    assert set(grouped[Component.ANTIVIRUS]) == {
        "c-icap.conf",
        "clamd_mod.conf",
        "virus_scan.conf",
        "clamd.conf",
        "freshclam.conf",
    }
    squid = files["squid.conf"]
    assert "acl swg_clients src 198.51.100.0/24" in squid
    # without inspection: peek at the TLS client hello, never decrypt (tests/test_render_exposure)
    assert directives(squid, "http_port")[0].startswith("http_port 3128 ssl-bump ")
    assert "generate-host-certificates=off" in directives(squid, "http_port")[0]
    assert "ssl_bump bump" not in squid
    assert directives(squid, "shutdown_lifetime") == [
        f"shutdown_lifetime {SHUTDOWN_SECONDS} seconds"
    ]


def test_antivirus_disabled_renders_no_icap_and_no_antivirus_files() -> None:
    files = dataplane_files(
        spec(antivirus={"enabled": False}), catalogue=CATALOGUE, settings=SETTINGS
    )
    assert "icap_service" not in files["squid.conf"]
    assert not any(name.startswith(("c-icap", "clamd", "virus_scan")) for name in files)


@pytest.mark.parametrize(("fail_open", "bypass"), [(False, "off"), (True, "on")])
def test_fail_open_decides_icap_bypass_and_a_failed_scan_is_an_error(
    fail_open: bool, bypass: str
) -> None:
    files = dataplane_files(
        spec(antivirus={"failOpen": fail_open}), catalogue=CATALOGUE, settings=SETTINGS
    )
    services = directives(files["squid.conf"], "icap_service")
    assert len(services) == 2
    assert all(f" bypass={bypass} " in line for line in services)
    assert all(line.endswith("icap://antivirus:1344/avscan") for line in services)
    assert "virus_scan.PassOnError off" in files["virus_scan.conf"]
    assert "virus_scan.SendPercentData 0" in files["virus_scan.conf"]


def test_forbidden_destinations_are_collapsed_so_squid_ignores_none() -> None:
    # Squid ignores the WIDER of two nested networks in one ACL: fd00:ec2::254 (metadata) inside
    # fd00::/8 (a cluster network) would switch off fd00::/8. No nesting may remain.
    files = dataplane_files(spec(), catalogue=CATALOGUE, settings=SETTINGS)
    (line,) = [
        acl for acl in directives(files["squid.conf"], "acl") if " swg_forbidden_dst " in acl
    ]
    networks = [ipaddress.ip_network(n) for n in line.split()[3:]]
    for a in networks:
        for b in networks:
            if a is not b and a.version == b.version:
                assert not a.subnet_of(b), f"{a} inside {b}"  # type: ignore[arg-type]
    text = " ".join(line.split()[3:])
    for required in (
        "127.0.0.0/8",
        "169.254.0.0/16",
        "10.0.0.0/8",
        "fd00::/8",
        "::1/128",
        "::/128",
    ):
        wanted = ipaddress.ip_network(required)
        assert any(
            wanted.version == n.version and wanted.subnet_of(n)  # type: ignore[arg-type]
            for n in networks
        ), f"{required} is not refused"
    assert "::ffff:0:0/96" not in text  # would match every IPv4 address in Squid


def test_test_loopback_setting_is_the_only_exception() -> None:
    files = dataplane_files(spec(), catalogue=CATALOGUE, settings=SETTINGS)
    assert "swg_test_origin" not in files["squid.conf"]
    test_settings = OperatorSettings(test_allowed_loopback=("127.0.0.2/32",))
    files = dataplane_files(spec(), catalogue=CATALOGUE, settings=test_settings)
    assert "acl swg_test_origin dst 127.0.0.2/32" in files["squid.conf"]
    assert "http_access deny swg_forbidden_dst !swg_test_origin" in files["squid.conf"]


def test_rules_come_in_order_bypass_policy_allow_deny_categories() -> None:
    files = dataplane_files(
        spec(
            urlFiltering={
                "blockedCategories": ["gambling", "malware"],
                "allow": {"domains": ["www.casino.test"]},
                "deny": {"domains": ["denied.test"], "urlRegex": ["^https?://[^/]+/x/"]},
                "policies": [
                    {
                        "name": "kids",
                        "sourceCIDRs": ["198.51.100.0/26"],
                        "blockedCategories": ["social_networks"],
                    }
                ],
            },
            options={"bypass": {"domains": ["bypass.test"], "CIDRs": ["192.0.2.0/24"]}},
        ),
        catalogue=CATALOGUE,
        settings=SETTINGS,
    )
    access = directives(files["squid.conf"], "http_access")
    order = [
        "deny !Safe_ports",
        "deny CONNECT !SSL_ports",
        "deny !swg_clients",
        "deny swg_forbidden_dst",
        "allow swg_bypass_dom ",
        "allow swg_bypass_dst ",
        "deny swg_p0_src swg_c2_dom",
        "allow swg_t_allow",
        "deny swg_t_deny",
        "deny swg_t_regex",
        "deny swg_c0_dom",
        "deny swg_c1_dom",
        "deny swg_c1_url",
        "allow swg_clients",
        "deny all",
    ]
    positions = [
        next(i for i, line in enumerate(access) if f"http_access {o}" in line) for o in order
    ]
    assert positions == sorted(positions)
    squid = files["squid.conf"]
    notes = {line.split()[1]: " ".join(line.split()[3:]) for line in directives(squid, "acl")}
    assert notes["swg_p0_tag_c2_dom"] == (
        "decision=block list=category category=social_networks policy=kids"
    )
    assert notes["swg_t_tag_deny"] == "decision=block list=deny-domain policy=tenant"
    assert notes["swg_t_tag_regex"] == "decision=block list=deny-regex policy=tenant"
    assert notes["swg_t_tag_allow"] == "decision=allow list=allow-domain policy=tenant"
    assert notes["swg_tag_bypass_dom"] == "decision=bypass list=bypass-domain policy=tenant"
    assert notes["swg_tag_bypass_dst"] == "decision=bypass list=bypass-cidr policy=tenant"
    assert notes["swg_tag_forbidden"] == "decision=block list=restricted policy=tenant"
    assert notes["swg_tag_default"] == "decision=allow list=default policy=tenant"
    assert "acl swg_bypass any-of swg_bypass_dom swg_bypass_dst" in squid
    # every block rule's annotation is on the block page's deny_info (the other language's
    # twins end with its page ACL, render.block_page)
    deny_info, other_language = directives(squid, "deny_info")
    assert other_language == "deny_info ERR_SWG_BLOCKED_JA swg_page_ja"
    for line in access:
        if line.startswith("http_access deny") and "_tag_" in line:
            last = line.split()[-1]
            assert last in deny_info.split() or last == "swg_page_ja", line


def test_acl_files_hold_catalogue_lines_and_are_referenced() -> None:
    files = dataplane_files(
        spec(urlFiltering={"blockedCategories": ["gambling", "malware"]}),
        catalogue=CATALOGUE,
        settings=SETTINGS,
    )
    # www.casino.test is covered by .casino.test (Squid would warn and drop one)
    assert files["category-gambling.domains.0.list"] == ".casino.test\n.poker.test\n"
    (url_line,) = files["category-malware.urls.0.list"].splitlines()
    assert url_line.startswith("^https?://")
    assert "bad\\.test" in url_line
    assert "/path/" in url_line
    referenced = set(re.findall(r'"/etc/swg/conf/([^"]+)"', files["squid.conf"]))
    lists = {name for name in files if name.endswith(".list")}
    assert lists == referenced


def test_large_categories_are_split_into_bounded_files() -> None:
    domains = [f"host{i:06d}.big.example" for i in range(40_000)]
    catalogue = Catalogue.of([Category.build("big", domains=domains)])
    files = dataplane_files(
        spec(urlFiltering={"blockedCategories": ["big"]}), catalogue=catalogue, settings=SETTINGS
    )
    parts = sorted(name for name in files if name.startswith("category-big.domains."))
    assert len(parts) > 1
    assert all(len(files[name].encode()) <= LIST_FILE_BYTES for name in parts)
    assert sum(files[name].count("\n") for name in parts) == len(domains)
    acl_lines = [line for line in directives(files["squid.conf"], "acl") if " swg_c0_dom " in line]
    assert len(acl_lines) == len(parts)  # Squid merges same-name ACL lines


def test_https_inspection_bumps_except_do_not_inspect_and_bypass() -> None:
    files = dataplane_files(
        spec(
            options={
                "bypass": {"domains": ["bypass.test"]},
                "httpsInspection": {
                    "enabled": True,
                    "doNotInspect": {"domains": ["bank.test"], "categories": ["gambling"]},
                },
            }
        ),
        catalogue=CATALOGUE,
        settings=SETTINGS,
    )
    squid = files["squid.conf"]
    (port,) = directives(squid, "http_port")
    assert "ssl-bump tls-cert=/etc/swg/tls/tls.crt tls-key=/etc/swg/tls/tls.key" in port
    assert directives(squid, "ssl_bump") == [
        "ssl_bump peek swg_step1",
        # The anti-virus pods' tunnels to the signature mirror (tests/test_signature_mirror.py).
        "ssl_bump splice swg_av_src swg_av_mirror_sni",
        "ssl_bump terminate swg_av_src",
        "ssl_bump splice swg_bypass_sni",
        "ssl_bump splice swg_bypass",
        "ssl_bump splice swg_no_inspect",
        "ssl_bump bump all",
    ]
    assert files["no-inspect.domains.0.list"] == ".bank.test\n.casino.test\n.poker.test\n"


def test_max_scan_size_reaches_c_icap_and_clamd() -> None:
    files = dataplane_files(
        spec(antivirus={"maxScanSize": "200Mi"}), catalogue=CATALOGUE, settings=SETTINGS
    )
    assert f"virus_scan.MaxObjectSize {200 * 2**20}" in files["virus_scan.conf"]
    assert f"MaxFileSize {200 * 2**20}" in files["clamd.conf"]


def _directive(text: str, name: str) -> str:
    (line,) = directives(text, name)
    return line.split(" ", 1)[1]


@pytest.mark.parametrize("declared", ["1Mi", "3Mi", "50Mi", "1.5G", "3Gi"])
def test_one_declared_scan_limit_is_every_daemon_s_limit(declared: str) -> None:
    """c-icap hands every body to clamd (no size limit of its own that would pass an object
    unscanned), and clamd's file and stream limits are the declared one: nothing smaller
    (a 3 MiB object scanned at a 1 MiB limit) and nothing larger (a larger file skipped and
    reported clean). clamd cannot scan more than 2000 MiB; a larger declaration is capped."""
    files = dataplane_files(
        spec(antivirus={"maxScanSize": declared}), catalogue=CATALOGUE, settings=SETTINGS
    )
    limit = min(parse_bytes(declared), CLAMD_MAX_BYTES)
    assert effective_scan_limit(spec(antivirus={"maxScanSize": declared})) == limit
    vscan, clamd = files["virus_scan.conf"], files["clamd.conf"]
    assert _directive(vscan, "virus_scan.MaxObjectSize") == str(limit)
    assert "sizelimit=off" in _directive(vscan, "ServiceAlias")
    assert _directive(clamd, "MaxFileSize") == str(limit)
    assert _directive(clamd, "StreamMaxLength") == str(limit)
    assert int(_directive(clamd, "MaxScanSize")) >= limit


@pytest.mark.parametrize("fail_open", [False, True])
def test_what_clamd_cannot_scan_is_reported_never_clean(fail_open: bool) -> None:
    files = dataplane_files(
        spec(antivirus={"failOpen": fail_open}), catalogue=CATALOGUE, settings=SETTINGS
    )
    clamd = files["clamd.conf"]
    assert _directive(clamd, "AlertExceedsMax") == "yes"
    assert _directive(clamd, "AlertEncrypted") == "yes"
    # a failed scan is an error, never a pass logged "passed" (failOpen is Squid's bypass=)
    assert _directive(files["virus_scan.conf"], "virus_scan.PassOnError") == "off"


@pytest.mark.parametrize("limit", [0, 1, 9, 10, 99, 1048576, 1048575, 2000 * 2**20])
def test_over_limit_regex_matches_exactly_the_larger_lengths(limit: int) -> None:
    regex = re.compile(greater_than_regex(limit))
    probes = {0, 1, 9, 10, 11, 99, 100, limit - 1, limit, limit + 1, limit * 10, limit + 10**6}
    for value in sorted(p for p in probes if p >= 0):
        assert bool(regex.fullmatch(str(value))) == (value > limit), (limit, value)
    assert regex.fullmatch("0" + str(limit + 1))  # leading zeros do not hide a length


def test_fail_open_sends_objects_over_the_limit_around_the_scanner() -> None:
    """With failOpen, a body whose declared length is over the limit is not sent to c-icap
    (Squid passes it and logs it not scanned); fail closed, every body is sent (clamd reports
    it over the limit and c-icap blocks it)."""
    open_ = dataplane_files(
        spec(antivirus={"failOpen": True, "maxScanSize": "1Mi"}),
        catalogue=CATALOGUE,
        settings=SETTINGS,
    )["squid.conf"]
    regex = greater_than_regex(2**20)
    assert f"acl swg_av_too_large rep_header Content-Length ^{regex}$" in open_
    assert f"acl swg_av_upload_too_large req_header Content-Length ^{regex}$" in open_
    access = [line.split(" ", 1)[1] for line in directives(open_, "adaptation_access")]
    assert access.index("swg_av_req deny swg_av_upload_too_large") < access.index(
        "swg_av_req allow swg_upload_methods"
    )
    assert access.index("swg_av_resp deny swg_av_too_large") < access.index("swg_av_resp allow all")
    closed = dataplane_files(
        spec(antivirus={"failOpen": False, "maxScanSize": "1Mi"}),
        catalogue=CATALOGUE,
        settings=SETTINGS,
    )["squid.conf"]
    assert "too_large" not in closed


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.from_regex(r"\A[a-z][a-z0-9]{0,10}\.(test|example)\Z"), min_size=0, max_size=5),
    st.booleans(),
    st.booleans(),
)
def test_every_line_is_a_directive_comment_or_blank(
    deny: list[str], inspection: bool, fail_open: bool
) -> None:
    files = dataplane_files(
        spec(
            urlFiltering={"deny": {"domains": sorted(set(deny))}},
            antivirus={"failOpen": fail_open},
            options={"httpsInspection": {"enabled": inspection}},
        ),
        catalogue=CATALOGUE,
        settings=SETTINGS,
    )
    known = {
        line.split()[0]
        for line in files["squid.conf"].splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert known <= {
        "pid_filename", "cache_log", "coredump_dir", "netdb_filename", "pinger_enable",
        "logfile_rotate", "shutdown_lifetime", "visible_hostname", "unique_hostname",
        "httpd_suppress_version_string",
        "forwarded_for", "via", "max_filedescriptors", "dns_defnames", "cache", "cache_mem",
        "maximum_object_size_in_memory", "http_port", "sslcrtd_program", "sslcrtd_children",
        "sslproxy_cert_error", "acl", "http_access", "error_directory", "deny_info", "ssl_bump",
        "icap_enable", "icap_preview_enable", "icap_preview_size", "icap_persistent_connections",
        "icap_send_client_ip", "icap_service_failure_limit", "icap_service_revival_delay",
        "icap_service", "adaptation_access", "adaptation_service_chain", "logformat", "access_log",
        "icap_send_client_username", "icap_client_username_header", "icap_client_username_encode",
        "adaptation_meta", "icap_log",
    }  # fmt: skip


def test_logging_directives_are_the_log_stores_and_follow_the_sandbox() -> None:
    """squid.conf and c-icap.conf carry `logstore.formats`' directives verbatim; the sandbox
    log exists exactly when Squid adapts through the sandbox (with or without anti-virus)."""
    plain = dataplane_files(spec(), catalogue=CATALOGUE, settings=SETTINGS)
    assert formats.squid_logging_directives() in plain["squid.conf"]
    assert "icap_log" not in plain["squid.conf"]
    assert (
        formats.cicap_logging_directives(service_names=CICAP_SERVICE_NAMES)
        in (plain["c-icap.conf"])
    )
    sandbox = {"sandbox": {"enabled": True, "icapURL": "icaps://sandbox.example:1344/respmod"}}
    with_sandbox = spec(options=sandbox)
    files = dataplane_files(with_sandbox, catalogue=CATALOGUE, settings=SETTINGS)
    assert sandbox_service_name(with_sandbox) == "swg_sandbox_resp"
    assert (
        formats.squid_logging_directives(sandbox_service="swg_sandbox_resp")
        in (files["squid.conf"])
    )
    # The sandbox works (and logs) with anti-virus off too.
    without_scanning = spec(options=sandbox, antivirus={"enabled": False})
    assert sandbox_service_name(without_scanning) == "swg_sandbox_resp"
    files = dataplane_files(without_scanning, catalogue=CATALOGUE, settings=SETTINGS)
    assert (
        formats.squid_logging_directives(sandbox_service="swg_sandbox_resp")
        in (files["squid.conf"])
    )
    assert "swg_av_resp" not in files["squid.conf"]
    for text in (plain["squid.conf"], files["squid.conf"]):  # one definition of each
        assert len(directives(text, "logfile_rotate")) == 1
        assert len(directives(text, "icap_send_client_ip")) == 1
