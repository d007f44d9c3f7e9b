"""What clients can get past and what websites learn, as the rendered Squid configuration says it
(e2e/dataplane/test_exposure.py runs the same output with real traffic)."""

from __future__ import annotations

from typing import Any

from swg_operator.api import OperatorSettings, SecureWebGatewaySpec, parse_spec
from swg_operator.catalogue import Catalogue, Category
from swg_operator.render.dataplane import render_dataplane_files

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
    files = render_dataplane_files(
        tenant or spec(), catalogue=CATALOGUE, settings=SETTINGS, **kwargs
    )
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
    custom = render_dataplane_files(
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
