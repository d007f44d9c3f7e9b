"""Where the proxy may connect and what the sandbox analyser may be: the API server's networks
are never a proxy destination, and the sandbox is reached over TLS, never on the pod itself."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from render_support import dataplane_files, find, minimal_spec, render
from swg_operator.api import OperatorSettings, parse_spec
from swg_operator.api.resource import SpecError
from swg_operator.catalogue import Catalogue

API_SERVER = "203.0.113.10/32"  # outside every cluster network of the default settings
SETTINGS = OperatorSettings(apiServerCidrs=(API_SERVER,))


def raw_spec(**overrides: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "serviceCode": "SWG-0000042",
        "sizing": {"endpoints": 10, "requestsPerSecond": 10},
        "clients": {"allowedCIDRs": ["198.51.100.0/24"]},
    }
    raw.update(overrides)
    return raw


def test_api_server_networks_are_not_a_proxy_destination() -> None:
    egress = find(
        render("acme", minimal_spec(), settings=SETTINGS), "NetworkPolicy", "proxy-egress"
    )
    blocks = [
        p["ipBlock"] for rule in egress["spec"]["egress"] for p in rule["to"] if "ipBlock" in p
    ]
    ipv4 = [b for b in blocks if ipaddress.ip_network(b["cidr"]).version == 4]
    assert ipv4, blocks  # the proxy's IPv4 egress is an ipBlock: the check below has one to read
    for block in ipv4:
        assert API_SERVER in block.get("except", []), block


def test_api_server_networks_are_refused_by_squid() -> None:
    squid = dataplane_files(parse_spec(raw_spec()), catalogue=Catalogue.of([]), settings=SETTINGS)[
        "squid.conf"
    ]
    (forbidden,) = [
        line for line in squid.splitlines() if line.startswith("acl swg_forbidden_dst ")
    ]
    assert API_SERVER in forbidden.split()


LOOPBACK_SPELLINGS = [
    "127.0.0.1", "127.1", "0x7f.1", "0x7f000001", "2130706433", "017700000001", "127.255.0.9",
    "0.0.0.0", "0", "169.254.169.254", "localhost", "localhost.localdomain", "api.localhost",
]  # fmt: skip


@pytest.mark.parametrize("host", LOOPBACK_SPELLINGS)
def test_sandbox_on_the_pod_itself_is_refused_in_any_spelling(host: str) -> None:
    spec = raw_spec(options={"sandbox": {"enabled": True, "icapURL": f"icaps://{host}:11344/x"}})
    with pytest.raises(SpecError) as error:
        parse_spec(spec)
    assert "spec.options.sandbox.icapURL" in str(error.value)


def test_cleartext_icap_to_the_sandbox_is_refused() -> None:
    spec = raw_spec(
        options={"sandbox": {"enabled": True, "icapURL": "icap://sandbox.example:1344/respmod"}}
    )
    with pytest.raises(SpecError) as error:
        parse_spec(spec)
    assert "spec.options.sandbox.icapURL" in str(error.value)
    assert "icaps://" in str(error.value)


def test_icaps_sandbox_outside_the_cluster_is_accepted() -> None:
    url = "icaps://sandbox.analysis.example:11344/respmod"
    spec = parse_spec(raw_spec(options={"sandbox": {"enabled": True, "icapURL": url}}))
    assert spec.options.sandbox.icap_url == url
