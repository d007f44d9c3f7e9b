"""freshclam's way to the signature mirror: the anti-virus pods (they parse hostile files) never
get an internet path of their own. With no mirror in the cluster (settings mirrorCIDRs and
mirrorPods empty: the public databaseMirror, or privateMirrors outside), freshclam goes through
the tenant's own proxy, and Squid lets the anti-virus pods reach the mirror's names on their
ports and nothing else; a client of allowedCIDRs can do nothing more than before. The data-plane
tier runs the Squid side (e2e/dataplane/test_signatures.py)."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from render_support import dataplane_files, find, minimal_spec, render
from swg_operator.api import OperatorSettings, parse_spec
from swg_operator.catalogue import Catalogue
from swg_operator.render import Lifecycle

CLUSTER_CIDRS = ("10.0.0.0/8", "172.16.0.0/12", "fd00::/8")


def settings_of(freshclam: dict[str, Any] | None = None, **extra: Any) -> OperatorSettings:
    raw: dict[str, Any] = {"clusterCidrs": list(CLUSTER_CIDRS), **extra}
    if freshclam is not None:
        raw["antivirus"] = {"signatureSource": "freshclam", "freshclam": freshclam}
    return OperatorSettings.model_validate(raw)


SETTINGS = {
    "public-mirror": settings_of(),
    "private-https": settings_of({"privateMirrors": ["https://clamav.mirror.example/db"]}),
    "private-two-https": settings_of(
        {"privateMirrors": ["https://cvd.example.net:8443/x", "https://clamav.mirror.example"]}
    ),
    "mirror-cidrs": settings_of(
        {"privateMirrors": ["http://mirror.example"], "mirrorCidrs": ["10.96.0.10/32"]}
    ),
    "mirror-pods": settings_of(
        {"mirrorPods": {"namespace": "swg-system", "podLabel": "app=clamav-mirror"}}
    ),
    "no-cluster-networks": OperatorSettings.model_validate({"clusterCidrs": []}),
    "catch-all-cluster": OperatorSettings.model_validate({"clusterCidrs": ["0.0.0.0/0", "::/0"]}),
    "config-map": OperatorSettings.model_validate({"antivirus": {"signatureSource": "configMap"}}),
    "custom-domain": settings_of(clusterDomain="k8s.example.internal", proxyPort=8080),
}
SPECS = {
    "minimal": minimal_spec(),
    "any-client": {
        **minimal_spec(),
        "clients": {"allowedCIDRs": ["0.0.0.0/0", "::/0"], "allowAnyClient": True},
    },
    "fail-open": {**minimal_spec(), "antivirus": {"enabled": True, "failOpen": True}},
}
PLATFORM_SIGNATURES = {"eicar.ndb": "Custom.Test.EICAR-NDB:0:*:58354f21\n"}


def antivirus_egress(settings: OperatorSettings, spec: dict[str, Any], lifecycle: Lifecycle):
    manifests = render(
        "acme",
        spec,
        settings=settings,
        lifecycle=lifecycle,
        platform_signatures=PLATFORM_SIGNATURES,
    )
    policy = find(manifests, "NetworkPolicy", "antivirus")
    return manifests, policy["spec"]["egress"]


@pytest.mark.parametrize("lifecycle", list(Lifecycle))
@pytest.mark.parametrize("spec_name", sorted(SPECS))
@pytest.mark.parametrize("settings_name", sorted(SETTINGS))
def test_the_antivirus_pods_never_get_an_internet_block(
    settings_name: str, spec_name: str, lifecycle: Lifecycle
) -> None:
    settings = SETTINGS[settings_name]
    _, egress = antivirus_egress(settings, SPECS[spec_name], lifecycle)
    allowed = {ipaddress.ip_network(c) for c in settings.antivirus.freshclam.mirror_cidrs}
    for rule in egress:
        for peer in rule.get("to", [{}]):  # a rule without `to` would mean anywhere
            assert peer, rule
            if "ipBlock" in peer:
                cidr = ipaddress.ip_network(peer["ipBlock"]["cidr"])
                assert cidr.prefixlen > 0, rule
                # Only the declared mirror networks: nothing the operator widened.
                assert cidr in allowed, rule
            elif "namespaceSelector" in peer:
                assert settings.antivirus.freshclam.mirror_pods is not None, rule


def test_freshclam_goes_through_the_tenant_proxy_by_its_full_name() -> None:
    for name, port, settings in (
        ("cluster.local", 3128, SETTINGS["public-mirror"]),
        ("k8s.example.internal", 8080, SETTINGS["custom-domain"]),
    ):
        manifests = render("acme", minimal_spec(), settings=settings)
        lines = manifests.config_files["freshclam.conf"].splitlines()
        assert f"HTTPProxyServer proxy.swg-acme.svc.{name}" in lines
        assert f"HTTPProxyPort {port}" in lines
        assert "DatabaseMirror database.clamav.net" in lines
        (rule,) = [r for r in find(manifests, "NetworkPolicy", "antivirus")["spec"]["egress"]
                   if r["ports"] != [{"protocol": "TCP", "port": 5140}]]  # fmt: skip
        proxy = find(manifests, "Service", "proxy")["spec"]["selector"]
        assert rule == {
            "to": [{"podSelector": {"matchLabels": proxy}}],
            "ports": [{"protocol": "TCP", "port": port}],
        }


@pytest.mark.parametrize("settings_name", ["mirror-cidrs", "mirror-pods", "no-cluster-networks"])
def test_no_proxy_path_when_the_mirror_is_in_the_cluster_or_pods_cannot_be_told(
    settings_name: str,
) -> None:
    manifests = render("acme", minimal_spec(), settings=SETTINGS[settings_name])
    assert "swg_av_src" not in manifests.config_files["squid.conf"]
    ingress = find(manifests, "NetworkPolicy", "proxy-ingress-clients")["spec"]["ingress"]
    assert len(ingress) == 1  # the clients only


@pytest.mark.parametrize("lifecycle", [Lifecycle.SUSPENDED, Lifecycle.CANCELLED])
def test_a_stopped_tenant_has_no_antivirus_path_to_the_proxy(lifecycle: Lifecycle) -> None:
    _, egress = antivirus_egress(SETTINGS["public-mirror"], minimal_spec(), lifecycle)
    (logstore,) = egress
    assert logstore["ports"] == [{"protocol": "TCP", "port": 5140}]


# ------------------------------------------------------------------------------ squid.conf
def squid_conf(settings: OperatorSettings, spec: dict[str, Any] | None = None) -> str:
    files = dataplane_files(
        parse_spec(spec or minimal_spec()),
        catalogue=Catalogue.of([]),
        settings=settings,
        namespace="swg-acme",
    )
    return files["squid.conf"]


def directives(text: str, prefix: str) -> list[str]:
    """The lines starting with `prefix`, without the block page's language twins
    (render.block_page: each ends with `swg_page_<lang>`)."""
    return [
        line
        for line in text.splitlines()
        if line.startswith(prefix) and not line.endswith((" swg_page_ja", " swg_page_en"))
    ]


def test_squid_admits_the_antivirus_pods_for_the_public_mirror_only() -> None:
    text = squid_conf(SETTINGS["public-mirror"])
    assert directives(text, "acl swg_av") == [
        "acl swg_av_src src 10.0.0.0/8 172.16.0.0/12 fd00::/8",
        "acl swg_av_mirror0 dstdomain -n database.clamav.net",
        "acl swg_av_mirror0_port port 443",
        "acl swg_av_mirror_sni ssl::server_name database.clamav.net",
    ]
    access = directives(text, "http_access ")
    assert access == [
        "http_access deny manager swg_tag_forbidden",
        "http_access deny !Safe_ports",
        "http_access deny CONNECT !SSL_ports",
        "http_access deny !swg_clients !swg_av_src",
        "http_access deny swg_cluster_names swg_tag_forbidden",
        "http_access deny swg_forbidden_dst swg_tag_forbidden",
        "http_access deny CONNECT swg_ip_host swg_tag_forbidden",
        # CONNECT to the mirror's name on its port; then nothing else for these sources.
        "http_access allow swg_av_src CONNECT swg_av_mirror0 swg_av_mirror0_port swg_tag_av_mirror",
        "http_access deny swg_av_src swg_tag_forbidden",
        "http_access allow swg_clients swg_tag_default",
        "http_access deny all",
    ]
    bump = directives(text, "ssl_bump ")
    assert bump[:3] == [
        "ssl_bump peek swg_step1",
        "ssl_bump splice swg_av_src swg_av_mirror_sni",
        "ssl_bump terminate swg_av_src",
    ]
    # Not scanned: clamd cannot scan its own first database download (and would fail closed).
    assert "adaptation_access swg_av_req deny swg_av_src" in text.splitlines()
    assert "adaptation_access swg_av_resp deny swg_av_src" in text.splitlines()
    assert "decision=bypass list=signature-mirror" in text


def test_each_private_mirror_gets_a_connect_rule_on_its_port() -> None:
    text = squid_conf(SETTINGS["private-two-https"])
    assert directives(text, "acl swg_av_mirror") == [
        "acl swg_av_mirror0 dstdomain -n clamav.mirror.example",
        "acl swg_av_mirror0_port port 443",
        "acl swg_av_mirror1 dstdomain -n cvd.example.net",
        "acl swg_av_mirror1_port port 8443",
        "acl swg_av_mirror_sni ssl::server_name clamav.mirror.example cvd.example.net",
    ]
    assert [line for line in directives(text, "http_access ") if "swg_av_src" in line] == [
        "http_access deny !swg_clients !swg_av_src",
        "http_access allow swg_av_src CONNECT swg_av_mirror0 swg_av_mirror0_port swg_tag_av_mirror",
        "http_access allow swg_av_src CONNECT swg_av_mirror1 swg_av_mirror1_port swg_tag_av_mirror",
        "http_access deny swg_av_src swg_tag_forbidden",
    ]


def test_an_http_private_mirror_without_a_direct_path_is_refused_naming_the_field() -> None:
    """freshclam tunnels through the proxy even to http:// URLs, which the proxy refuses: such
    settings would leave every tenant without signatures, so the operator refuses them."""
    with pytest.raises(ValueError, match=r"privateMirrors: http://mirror\.example/ is http://"):
        settings_of({"privateMirrors": ["http://mirror.example/"]})
    assert settings_of({"privateMirrors": ["https://mirror.example/"]})
    direct = {"privateMirrors": ["http://mirror.example/"], "mirrorCidrs": ["198.18.0.0/15"]}
    assert settings_of(direct)


@pytest.mark.parametrize("spec_name", sorted(SPECS))
def test_clients_of_the_allowed_cidrs_get_nothing_more(spec_name: str) -> None:
    """squid.conf with the anti-virus rule, less every line that needs a source in the
    cluster's networks (`swg_av_src` positively) and the `!swg_av_src` term, is squid.conf
    without it: for any other source (every client of the NetworkPolicy) nothing changed."""
    spec = {**SPECS[spec_name], "options": {"httpsInspection": {"enabled": True}}}
    with_rule = squid_conf(SETTINGS["public-mirror"], spec)
    direct = settings_of({"mirrorCidrs": ["198.18.0.0/15"]})
    without_rule = squid_conf(direct, spec)
    assert "swg_av_src" in with_rule
    assert "swg_av_src" not in without_rule

    def needs_av_source(line: str) -> bool:
        words = line.split()
        mirror_acls = ("swg_av_src", "swg_av_mirror")
        is_av_acl = len(words) > 1 and words[0] == "acl" and words[1].startswith(mirror_acls)
        return "swg_av_src" in words or is_av_acl

    stripped = [
        line.replace(" !swg_av_src", "")
        for line in with_rule.splitlines()
        if not needs_av_source(line) and not line.startswith("acl swg_tag_av_mirror ")
    ]
    comments_off = [line for line in stripped if not line.startswith("#") and line]
    expected = [line for line in without_rule.splitlines() if not line.startswith("#") and line]
    assert comments_off == expected


def test_squid_never_admits_the_antivirus_pods_when_antivirus_is_off() -> None:
    spec = {**minimal_spec(), "antivirus": {"enabled": False}}
    assert "swg_av_src" not in squid_conf(SETTINGS["public-mirror"], spec)
    manifests = render("acme", spec, settings=SETTINGS["public-mirror"])
    ingress = find(manifests, "NetworkPolicy", "proxy-ingress-clients")["spec"]["ingress"]
    assert len(ingress) == 1
