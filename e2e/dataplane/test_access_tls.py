"""spec.access.tls with real Squid and a real TLS client (curl --proxy https://...): the client
speaks TLS to the proxy's https_port, checks its certificate against the CA it was given, and
reaches the test origin over HTTP and HTTPS; a client that does not trust that CA gets no
answer; the domain rules hold on the TLS listener; with plaintext: false the plain port does
not answer.

Runs what `swg-operator render` produces for testdata/tenant/tenant-access-tls.yaml and
tenant-access-tls-only.yaml, with the test PKI's listener certificate mounted where the
certificate Secret is mounted.
"""

from __future__ import annotations

import pytest

from e2e.dataplane import client
from e2e.dataplane.conftest import TENANT_DATA, RenderTenant, StartDataplane
from e2e.dataplane.daemons import tcp_open
from e2e.dataplane.listener import from_listener, through_tls
from e2e.dataplane.pki import ACCESS_HOSTNAME, subject_of
from e2e.dataplane.stack import DataplaneStack
from swg_operator.render.pac import PAC_URL_PATH

pytestmark = pytest.mark.dataplane

SETTINGS = TENANT_DATA / "settings-exposure.yaml"


@pytest.fixture(scope="module")
def tls_stack(start_dataplane: StartDataplane, render_tenant: RenderTenant) -> DataplaneStack:
    conf = render_tenant(TENANT_DATA / "tenant-access-tls.yaml", settings=SETTINGS)
    return start_dataplane(conf, label="access-tls", daemons=("squid",))


@pytest.fixture(scope="module")
def tls_only(start_dataplane: StartDataplane, render_tenant: RenderTenant) -> DataplaneStack:
    conf = render_tenant(TENANT_DATA / "tenant-access-tls-only.yaml", settings=SETTINGS)
    return start_dataplane(conf, label="access-tls-only", daemons=("squid",))


def _through_tls(stack: DataplaneStack, url: str, *, trust: str = "listener") -> client.Response:
    """curl to ``url`` through the TLS listener by its name, trusting ``trust``'s CA."""
    ca = stack.pki.access_ca_cert if trust == "listener" else stack.pki.origin_ca_cert
    return through_tls(stack, url, trust=ca, cacert=stack.pki.origin_ca_cert)


def test_a_client_speaks_tls_to_the_proxy_and_reaches_the_origin(tls_stack: DataplaneStack) -> None:
    response = _through_tls(tls_stack, "http://clean.test/files/hello.txt")
    assert response.status == 200, (response.status, response.error)
    assert response.body == tls_stack.payloads["hello.txt"].path.read_bytes()
    # The proxy's certificate was checked: curl reports the verification of the proxy's TLS.
    assert response.info.get("proxy_ssl_verify_result") == 0, response.info
    entry = tls_stack.wait_for_access_log(r'"url":"http://clean.test/files/hello.txt"')
    assert entry["decision"] == "allow"
    assert entry["status"] == "200"


def test_https_through_the_tls_listener(tls_stack: DataplaneStack) -> None:
    # TLS to the origin inside a CONNECT tunnel inside TLS to the proxy.
    response = _through_tls(tls_stack, "https://clean.test/files/hello.txt")
    assert response.status == 200, (response.status, response.error)
    assert response.body == tls_stack.payloads["hello.txt"].path.read_bytes()


def test_the_domain_rules_hold_on_the_tls_listener(tls_stack: DataplaneStack) -> None:
    response = _through_tls(tls_stack, "http://denied.test/files/hello.txt")
    assert response.status == 403, (response.status, response.error)
    assert b"blocked" in response.body.lower()
    tunnel = _through_tls(tls_stack, "https://denied.test/files/hello.txt")
    assert tunnel.status != 200, (tunnel.status, tunnel.error)


def test_a_client_that_does_not_trust_the_listener_ca_is_refused(
    tls_stack: DataplaneStack,
) -> None:
    response = _through_tls(
        tls_stack, "http://clean.test/files/hello.txt?untrusted", trust="origin"
    )
    assert response.status == 0
    assert response.exit_code == 60, (response.exit_code, response.error)  # certificate problem
    assert "certificate" in response.error.lower()
    assert not [e for e in tls_stack.access_log() if "untrusted" in str(e.get("url"))]


def test_the_plain_listener_stays_open_by_default(tls_stack: DataplaneStack) -> None:
    response = tls_stack.request("http://clean.test/files/hello.txt")
    assert response.status == 200, (response.status, response.error)


def test_with_plaintext_false_the_plain_port_does_not_answer(tls_only: DataplaneStack) -> None:
    assert tls_only.plain_address is None
    assert tls_only.netns is not None
    assert not tls_only.netns.call(lambda: tcp_open(("127.0.0.1", 3128)))
    refused = client.curl(tls_only.netns, "http://clean.test/", proxy="127.0.0.1:3128")
    assert refused.status == 0
    assert refused.exit_code == 7, (refused.exit_code, refused.error)  # could not connect
    response = _through_tls(tls_only, "http://clean.test/files/hello.txt")
    assert response.status == 200, (response.status, response.error)


def test_with_plaintext_false_the_pac_file_is_served_over_tls(tls_only: DataplaneStack) -> None:
    assert tls_only.tls_address is not None
    port = tls_only.tls_address[1]
    response = from_listener(tls_only, PAC_URL_PATH)
    assert response.status == 200, (response.status, response.error)
    assert f"HTTPS {ACCESS_HOSTNAME}:{port}".encode() in response.body
    assert b"PROXY " not in response.body


@pytest.fixture(scope="module")
def tls_inspect(start_dataplane: StartDataplane, render_tenant: RenderTenant) -> DataplaneStack:
    conf = render_tenant(TENANT_DATA / "tenant-access-tls-inspect.yaml", settings=SETTINGS)
    return start_dataplane(conf, label="access-tls-inspect", daemons=("squid",))


def test_with_inspection_the_tls_listener_refuses_tunnels(tls_inspect: DataplaneStack) -> None:
    plain_http = _through_tls(tls_inspect, "http://clean.test/files/hello.txt")
    assert plain_http.status == 200, (plain_http.status, plain_http.error)
    tunnel = _through_tls(tls_inspect, "https://clean.test/files/hello.txt")
    assert tunnel.status != 200, (tunnel.status, tunnel.error)
    assert tunnel.info.get("http_connect") == 403, tunnel.info
    # The same https:// URL through the plain listener is decrypted with the inspection CA.
    inspected = tls_inspect.request(
        "https://clean.test/files/hello.txt", cacert=tls_inspect.pki.inspection_ca_cert
    )
    assert inspected.status == 200, (inspected.status, inspected.error)
    assert "Test Tenant Inspection CA" in subject_of(inspected.certs[0])
