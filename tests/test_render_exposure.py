"""What clients can get past and what websites learn, as the rendered Squid configuration says it
(e2e/dataplane/test_exposure.py runs the same output with real traffic)."""

from __future__ import annotations

from typing import Any

from render_support import dataplane_files
from swg_operator.api import OperatorSettings, SecureWebGatewaySpec, parse_spec
from swg_operator.catalogue import Catalogue, Category

CATALOGUE = Catalogue.of(
    [
        Category.build("gambling", domains=["casino.test", "poker.test"]),
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


def squid_conf(tenant: SecureWebGatewaySpec | None = None, **kwargs: Any) -> str:
    files = dataplane_files(tenant or spec(), catalogue=CATALOGUE, settings=SETTINGS, **kwargs)
    return files["squid.conf"]


def http_access(text: str) -> list[str]:
    return [line.split(" ", 1)[1] for line in text.splitlines() if line.startswith("http_access ")]


def directive(text: str, name: str) -> list[str]:
    return [line.split(" ", 1)[1] for line in text.splitlines() if line.split(" ", 1)[0] == name]


# ------------------------------------------------------------------------------ cache manager
def test_cache_manager_is_denied_before_any_allow() -> None:
    rules = http_access(squid_conf())
    assert rules[0].split()[:2] == ["deny", "manager"]


# ------------------------------------------------------------------------------ what sites learn
def test_requests_carry_a_via_that_names_no_tenant_and_no_forwarded_for() -> None:
    text = squid_conf()
    # Via names unique_hostname; visible_hostname (swg-0000042.swg) is for the clients only.
    assert directive(text, "unique_hostname") == ["swg-gateway"]
    assert directive(text, "via") in ([], ["on"], ["off"])
    assert directive(text, "forwarded_for") == ["delete"]
    for line in text.splitlines():
        if line.split(" ", 1)[0] in {"unique_hostname", "request_header_add"}:
            assert "0000042" not in line


def test_names_are_looked_up_as_written() -> None:
    text = squid_conf()
    assert directive(text, "dns_defnames") == ["off"]
    assert directive(text, "append_domain") == []


def test_the_antivirus_service_is_named_fully_qualified() -> None:
    text = squid_conf(namespace="swg-acme")
    urls = [line.split()[-1] for line in directive(text, "icap_service")]
    assert urls == ["icap://antivirus.swg-acme.svc.cluster.local:1344/avscan"] * 2
    custom = dataplane_files(
        spec(),
        catalogue=CATALOGUE,
        settings=OperatorSettings(clusterDomain="k8s.example.internal"),
        namespace="swg-acme",
    )["squid.conf"]
    assert "icap://antivirus.swg-acme.svc.k8s.example.internal:1344/avscan" in custom


def test_cluster_names_are_refused_before_any_lookup() -> None:
    text = squid_conf(namespace="swg-acme")
    assert "acl swg_cluster_names dstdomain -n .cluster.local" in text
    rules = http_access(text)
    refused = rules.index("deny swg_cluster_names swg_tag_forbidden")
    first_lookup = next(i for i, rule in enumerate(rules) if "swg_forbidden_dst" in rule)
    assert refused < first_lookup


# ------------------------------------------------------------------------------ HTTPS by SNI
FILTERED = {
    "urlFiltering": {
        "blockedCategories": ["gambling"],
        "allow": {"domains": ["www.casino.test"]},
        "deny": {"domains": ["denied.test"], "urlRegex": ["^https?://[^/]+/x/"]},
        "policies": [
            {"name": "kids", "sourceCIDRs": ["198.51.100.64/26"],
             "blockedCategories": ["social_networks"]},
        ],
    },
    "options": {"bypass": {"domains": ["bypass.test"], "CIDRs": ["192.0.2.0/24"]}},
}  # fmt: skip


def ssl_bump(text: str) -> list[str]:
    return directive(text, "ssl_bump")


def test_without_inspection_https_is_filtered_by_server_name() -> None:
    text = squid_conf(spec(**FILTERED))
    (port,) = directive(text, "http_port")
    assert port.split()[:2] == ["3128", "ssl-bump"]
    assert "generate-host-certificates=off" in port  # nothing is ever decrypted
    assert "/var/lib/swg/squid/peek-tls/tls.key" in port  # made per pod by the entrypoint
    assert ssl_bump(text) == [
        "peek swg_step1",
        # The anti-virus pods' tunnels to the signature mirror (tests/test_signature_mirror.py).
        "splice swg_av_src swg_av_mirror_sni",
        "terminate swg_av_src",
        "splice swg_bypass_sni",
        "splice swg_bypass",
        "terminate swg_p0_src swg_c1_dom_sni swg_p0_tag_c1_dom",
        "splice swg_t_allow_sni",
        "terminate swg_t_deny_sni swg_t_tag_deny",
        "terminate swg_c0_dom_sni swg_t_tag_c0_dom",
        "splice all",
    ]
    for acl, files in (("swg_t_deny", "tenant-deny.domains"), ("swg_c0_dom", "category-gambling")):
        assert f'acl {acl}_sni ssl::server_name "/etc/swg/conf/{files}' in text
    assert "bump all" not in ssl_bump(text)


def test_with_inspection_denied_names_are_decrypted_to_show_the_block_page() -> None:
    raw = {**FILTERED}
    raw["options"] = {
        "bypass": {"domains": ["bypass.test"], "CIDRs": ["192.0.2.0/24"]},
        "httpsInspection": {"enabled": True, "doNotInspect": {"domains": ["bank.test"]}},
    }
    rules = ssl_bump(squid_conf(spec(**raw)))
    assert rules[0] == "peek swg_step1"
    # a denied name is never spliced, even when it is also in doNotInspect
    assert rules.index("bump swg_t_deny_sni") < rules.index("splice swg_no_inspect")
    assert "splice swg_t_allow_sni swg_no_inspect" in rules
    assert rules[-1] == "bump all"
    # Nothing is terminated but the anti-virus pods' tunnels to another name than the mirror.
    assert [rule for rule in rules if rule.startswith("terminate")] == ["terminate swg_av_src"]


def test_connect_to_an_address_is_refused_unless_in_a_bypass_network() -> None:
    text = squid_conf(spec(**FILTERED))
    rules = http_access(text)
    refused = rules.index("deny CONNECT swg_ip_host !swg_bypass_dst swg_tag_forbidden")
    assert refused < rules.index("allow swg_bypass_dst swg_tag_bypass_dst")
    assert refused < rules.index("allow swg_bypass_dom swg_tag_bypass_dom")
    assert "deny CONNECT swg_ip_host swg_tag_forbidden" in http_access(squid_conf())


def test_the_address_patterns_match_every_spelling_of_an_address_and_no_name() -> None:
    import re

    from swg_operator.render.squid import IP_HOST_PATTERNS

    def is_address(host: str) -> bool:
        return any(re.search(p, host, re.I) for p in IP_HOST_PATTERNS)

    for host in (
        "127.0.0.2",
        "2130706434",
        "0x7f.0.0.2",
        "0x7F000002",
        "017700000002",
        "[::ffff:127.0.0.2]",
        "::1",
        "[2001:db8::1]",
        "1.2.3.4.",
        "93.184.216.34",
    ):
        assert is_address(host), host
    for host in (
        "example.com",
        "bad.cafe",
        "face.be",
        "x0.example",
        "1password.com",
        "123.example",
        "www.0x.example",
    ):
        assert not is_address(host), host
