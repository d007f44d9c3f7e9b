"""What a client can get past and what websites learn, with exactly what `swg-operator render`
produces for testdata/tenant/tenant-exposure.yaml: HTTPS inspection off (the default), so HTTPS
is filtered by the TLS server name (SNI) without decrypting; a bypass network (127.0.0.3/32);
Squid alone (no anti-virus).

Clients connect from 127.0.0.x: 127.0.0.0/25 is the tenant's allowedCIDRs, 127.0.0.64/26 the
policy "kids". The origin answers on 127.0.0.2 (every test name) and 127.0.0.3.
"""

from __future__ import annotations

import json

import pytest

from e2e.dataplane import client
from e2e.dataplane.conftest import TENANT_DATA, RenderTenant, StartDataplane
from e2e.dataplane.pki import subject_of
from e2e.dataplane.stack import DEFAULT_TEST_NAMES, DataplaneStack

pytestmark = pytest.mark.dataplane

TENANT = TENANT_DATA / "tenant-exposure.yaml"
SETTINGS = TENANT_DATA / "settings-exposure.yaml"
SERVICE_CODE = "SWG-TEST-0002"
NAMESPACE = "swg-dataplane-exposure"
# A pod's resolv.conf search list in the tenant namespace (cluster domain cluster.local).
POD_SEARCH = (f"{NAMESPACE}.svc.cluster.local", "svc.cluster.local", "cluster.local")
KIDS_CLIENT = "127.0.0.70"
BYPASS_ADDRESS = "127.0.0.3"


@pytest.fixture(scope="module")
def exposure(start_dataplane: StartDataplane, render_tenant: RenderTenant) -> DataplaneStack:
    return start_dataplane(
        render_tenant(TENANT, settings=SETTINGS),
        label="exposure",
        names=(*DEFAULT_TEST_NAMES, "social.test"),
        daemons=("squid",),
        resolv_search=POD_SEARCH,
    )


def tunnel(
    stack: DataplaneStack, *, connect: str, sni: str | None, host: str, source: str | None = None
) -> client.TunnelResponse:
    assert stack.netns is not None
    return client.tunnel(
        stack.netns, stack.proxy_address, connect=connect, sni=sni, host=host, source=source
    )


def served(response: client.TunnelResponse) -> bool:
    """The origin's page came back through the tunnel."""
    return response.status == 200 and response.body.startswith(b"origin ")


def test_rendered_squid_conf_parses_without_warnings(exposure: DataplaneStack) -> None:
    result = exposure.run_in_pod("proxy", ["/usr/local/bin/swg-proxy-entrypoint", "-k", "parse"])
    assert result.returncode == 0, result.stderr[-2000:]
    problems = [line for line in result.stderr.splitlines() if "WARNING" in line or "ERROR" in line]
    assert not problems


# ------------------------------------------------------------------------------ HTTPS by SNI
def test_https_to_an_allowed_name_passes_undecrypted(exposure: DataplaneStack) -> None:
    response = exposure.request(
        "https://clean.test/files/hello.txt", cacert=exposure.pki.origin_ca_cert
    )
    assert response.status == 200, response.error
    assert "Test Origin CA" in subject_of(response.certs[0])
    honest = tunnel(exposure, connect="clean.test:443", sni="clean.test", host="clean.test")
    assert served(honest), honest


@pytest.mark.parametrize(
    ("sni", "source"),
    [
        ("denied.test", None),  # spec.urlFiltering.deny.domains
        ("casino.test", None),  # a blocked category
        ("www.poker.test", None),  # a blocked category, subdomain
        ("social.test", KIDS_CLIENT),  # a blocked category of the client's policy
    ],
)
def test_denied_name_in_sni_is_refused_behind_an_allowed_connect(
    exposure: DataplaneStack, sni: str, source: str | None
) -> None:
    # The CONNECT names an allowed host of the same address; the TLS server name is the denied
    # one, as a client reaching a denied site on a shared address does.
    response = tunnel(exposure, connect="clean.test:443", sni=sni, host=sni, source=source)
    assert response.connect_status == 200
    assert not served(response), response


@pytest.mark.parametrize(
    ("sni", "source"),
    [
        ("www.casino.test", None),  # the allow list beats the category
        ("social.test", "127.0.0.9"),  # the policy's category does not apply to others
        ("bypass.test", None),  # bypass
    ],
)
def test_allowed_name_in_sni_passes(exposure: DataplaneStack, sni: str, source: str | None) -> None:
    response = tunnel(exposure, connect="clean.test:443", sni=sni, host=sni, source=source)
    assert served(response), response


@pytest.mark.parametrize(
    "target",
    ["127.0.0.2:443", "[::ffff:127.0.0.2]:443", "2130706434:443", "0x7f.0.0.2:443"],
)
def test_connect_to_a_bare_address_is_refused(exposure: DataplaneStack, target: str) -> None:
    # The denied site's address with its name in the SNI: no host name left to filter on.
    response = tunnel(exposure, connect=target, sni="denied.test", host="denied.test")
    assert not served(response), response
    honest = tunnel(exposure, connect=target, sni=None, host="127.0.0.2")
    assert not served(honest), honest


def test_connect_to_an_address_in_a_bypass_network_is_allowed(exposure: DataplaneStack) -> None:
    response = tunnel(exposure, connect=f"{BYPASS_ADDRESS}:443", sni=None, host=BYPASS_ADDRESS)
    assert served(response), response


# ------------------------------------------------------------------------------ cache manager
@pytest.mark.parametrize("page", ["info", "active_requests", "menu"])
def test_cache_manager_is_refused_to_clients(exposure: DataplaneStack, page: str) -> None:
    hostname = f"{SERVICE_CODE.lower()}.swg"
    port = exposure.proxy_address[1]
    response = exposure.request(f"http://{hostname}:{port}/squid-internal-mgr/{page}")
    assert response.status == 403, response.text[:300]
    assert "Squid Object Cache" not in response.text
    assert exposure.netns is not None
    status, answer = client.raw_request(
        exposure.netns,
        exposure.proxy_address,
        f"GET cache_object://{hostname}/{page} HTTP/1.0\r\n\r\n".encode(),
    )
    assert status != 200, answer[:300]
    assert b"Squid Object Cache" not in answer


# ------------------------------------------------------------------------------ what sites learn
def test_origin_sees_no_via_and_no_forwarded_for(exposure: DataplaneStack) -> None:
    response = exposure.request(
        "http://clean.test/headers", headers={"X-Forwarded-For": "198.51.100.7"}
    )
    assert response.status == 200, response.error
    headers = {name.lower(): value for name, value in json.loads(response.body).items()}
    # HTTP requires a Via header; it names no tenant
    assert headers.get("via", "1.1 swg-gateway (squid)") == "1.1 swg-gateway (squid)"
    assert "x-forwarded-for" not in headers
    assert "forwarded" not in headers
    for value in headers.values():
        assert SERVICE_CODE.lower() not in value.lower()
    assert "127.0.0." not in " ".join(headers.values())  # the client's address


def test_names_are_never_completed_with_the_pod_search_list(exposure: DataplaneStack) -> None:
    # With the search list, `logstore.swg-other` would be tried as another tenant's Service
    # (logstore.swg-other.svc.cluster.local) and the answer would tell that it exists.
    assert exposure.origin is not None
    for url in ("http://logstore.swg-other/", "http://intranet/", "http://logstore/"):
        response = exposure.request(url)
        assert response.status != 200
        for name in ("swg-other", "intranet", NAMESPACE, "cluster.local"):
            if name not in url:
                assert name not in response.text, (url, name)
    asked = exposure.origin.dns_queries()
    assert asked, "Squid asked the DNS nothing"
    assert not [name for name in asked if name.endswith("cluster.local")], asked


def test_cluster_names_are_refused_before_any_lookup(exposure: DataplaneStack) -> None:
    assert exposure.origin is not None
    url = "http://logstore.swg-other.svc.cluster.local:8080/"
    response = exposure.request(url)
    assert response.status == 403
    assert "restricted" in response.text
    assert not [n for n in exposure.origin.dns_queries() if n.endswith("svc.cluster.local")]
