"""The PAC file (render.pac), evaluated by a real PAC engine (pacparser: the JavaScript engine
and PAC helper functions browsers implement) for a table of URLs; and the spec.access rules."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pacparser  # type: ignore[import-untyped]
import pytest
from pydantic import ValidationError
from tests.render_support import minimal_spec

from swg_operator.api.spec import SecureWebGatewaySpec
from swg_operator.render.pac import pac_file

PORT = 3128
HOST = "proxy.example.com"

BYPASS = {
    "domains": ["intranet.example", ".update.example.org"],
    "CIDRs": ["10.20.0.0/16", "2001:db8::/32"],
}


def _spec(access: dict[str, Any], bypass: dict[str, Any] = BYPASS) -> SecureWebGatewaySpec:
    return SecureWebGatewaySpec.model_validate(
        minimal_spec(access=access, options={"bypass": bypass})
    )


@pytest.fixture
def engine() -> Iterator[None]:
    pacparser.init()
    yield
    pacparser.cleanup()


def _evaluate(spec: SecureWebGatewaySpec, url: str) -> str:
    pacparser.parse_pac_string(pac_file(spec.access, spec.options.bypass, PORT))
    return str(pacparser.find_proxy(url))


BOTH = "HTTPS proxy.example.com:3129; PROXY proxy.example.com:3128"
TABLE = (
    ("http://intranet.example/", "DIRECT"),  # a bypass domain itself
    ("https://wiki.intranet.example/a?b=c", "DIRECT"),  # and its subdomains
    ("http://INTRANET.example./x", "DIRECT"),  # any case, trailing dot
    ("https://update.example.org/", "DIRECT"),  # leading dot: the domain too
    ("https://dl.update.example.org/f.bin", "DIRECT"),
    ("http://10.20.3.4:8080/", "DIRECT"),  # a literal address in a bypass network
    ("http://xintranet.example/", BOTH),  # ends like a bypass domain, is another
    ("http://intranet.example.com/", BOTH),
    ("http://10.21.0.1/", BOTH),  # outside the network
    ("https://www.example.net/", BOTH),
    ("http://[2001:db8::1]/", BOTH),  # IPv6 literals always go through the proxy
)


@pytest.mark.parametrize(("url", "expected"), TABLE)
def test_pac_routes_bypass_direct_and_the_rest_to_the_proxy_tls_first(
    engine: None, url: str, expected: str
) -> None:
    spec = _spec({"hostname": HOST, "pac": {"enabled": True}, "tls": {"enabled": True}})
    assert _evaluate(spec, url) == expected


def test_pac_without_tls_names_the_plain_port(engine: None) -> None:
    spec = _spec({"hostname": HOST, "pac": {"enabled": True}})
    assert _evaluate(spec, "https://www.example.net/") == "PROXY proxy.example.com:3128"
    assert _evaluate(spec, "http://intranet.example/") == "DIRECT"


def test_pac_with_tls_only_names_the_tls_port_only(engine: None) -> None:
    access = {"hostname": HOST, "pac": {"enabled": True}}
    spec = _spec(access | {"tls": {"enabled": True, "port": 8443, "plaintext": False}})
    assert _evaluate(spec, "https://www.example.net/") == "HTTPS proxy.example.com:8443"


def test_pac_without_bypass_sends_everything_to_the_proxy(engine: None) -> None:
    spec = _spec({"hostname": HOST, "pac": {"enabled": True}}, bypass={})
    assert _evaluate(spec, "http://intranet.example/") == "PROXY proxy.example.com:3128"
    assert _evaluate(spec, "http://10.20.3.4/") == "PROXY proxy.example.com:3128"


@pytest.mark.parametrize(
    ("access", "message"),
    [
        ({"pac": {"enabled": True}}, "access.hostname: required when access.pac.enabled"),
        (
            {"tls": {"enabled": True}},
            "access.hostname: required when access.pac.enabled or access.tls.enabled",
        ),
        ({"tls": {"plaintext": False}}, "access.tls.plaintext: false"),
        ({"hostname": "<script>&.example"}, "hostname"),
        ({"hostname": HOST, "tls": {"port": 80}}, "port"),
        ({"hostname": HOST, "tls": {"certificateSecret": {"name": "Bad_Name"}}}, "name"),
    ],
)
def test_access_rejects_bad_input_naming_the_field(access: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as raised:
        _spec(access)
    assert message in str(raised.value)


def test_with_inspection_https_urls_go_to_the_plain_listener(engine: None) -> None:
    spec = _spec({"hostname": HOST, "pac": {"enabled": True}, "tls": {"enabled": True}})
    text = pac_file(spec.access, spec.options.bypass, PORT, inspection=True)
    pacparser.parse_pac_string(text)
    assert pacparser.find_proxy("https://www.example.net/") == "PROXY proxy.example.com:3128"
    assert pacparser.find_proxy("HTTPS://www.example.net/") == "PROXY proxy.example.com:3128"
    assert pacparser.find_proxy("http://www.example.net/") == BOTH
    assert pacparser.find_proxy("https://wiki.intranet.example/") == "DIRECT"
