"""The customer-facing proxy features on the real node (`make test-node`; root): the TLS
listener (`spec.access.tls`, here the only way in: `plaintext: false`), the block page in
English and Japanese (`spec.blockPage`) and the PAC file (`spec.access.pac`).

One tenant runs its pods on the real node, installed by the chart as in
e2e/test_node_tenants.py, and its `access.hostname` is its proxy Service's DNS name, so a
client pod reaches the listener under the name its certificate carries. The client is a pod in
the tenant's `clients.allowedCIDRs`; it speaks TLS to the proxy with Python's `ssl` module,
trusting only the certificate the operator publishes in ConfigMap `proxy-access-tls-cert`, as
a customer's client would. The "internet" is the test origin (`e2e.node.origin`); every packet
stays on this machine.

What is proven here:
* through the TLS listener an allowed client fetches the origin's payload, byte for byte, and
  the request reaches the tenant's log store, downloaded by its admin with `kubectl swg logs`;
  a client trusting another certificate gets no answer; the plain proxy port does not accept
  the client's connection while the TLS port does;
* a denied domain gets the block page in Japanese for `Accept-Language: ja`, in English for
  `en` and without the header (the tenant's default), each with the customer's title and
  contact text and the request id whose digest is the `requestId` of the logged records;
* the PAC file is served over the TLS listener, names `HTTPS <hostname>:<tls port>` (no plain
  `PROXY`, the plain port being closed to clients) and sends the bypass domains `DIRECT`.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from e2e.cluster import ControlPlane, service_account_kubeconfig, unique_name, wait_until
from e2e.dataplane.payloads import Payload
from e2e.node.origin import ORIGIN_IP, node_origin
from e2e.node.tenants import (
    CONNECT,
    DENIED_DOMAIN,
    PROXY_PORT,
    READY_TIMEOUT,
    clean_up,
    client_pod,
    installed_with_clients,
    pod_ips,
    py,
    run_pod,
    tenant,
)
from e2e.operator_process import wait_phase
from swg_operator.commands.logs import kubectl_main
from swg_operator.render.pac import PAC_URL_PATH

pytestmark = [pytest.mark.node, pytest.mark.timeout(900)]

TLS_PORT = 3129
BYPASS_DOMAIN = "intranet.test"
TITLE = "Example Corp <Web> 100% filter"
CONTACT_LINES = ("情報システム部 ヘルプデスク (内線 1234)", "helpdesk@example.test")

# Runs in a client pod: one request over TLS to host:port, trusting only the PEM in argv[3]
# (the listener's certificate), checked against the name in argv[1] as curl --proxy https://
# does. argv[4] is the request target: an absolute URL (a proxy request) or a path (a file the
# proxy serves itself); argv[5] the Accept-Language header ("" for none). Prints JSON
# {status, contentType, sha256, body (first 16 KiB)} or {status: null, error}.
TLS_REQUEST = textwrap.dedent(
    """
    import hashlib, http.client, json, ssl, sys
    host, port, pem, target, language = sys.argv[1:6]
    ctx = ssl.create_default_context(cadata=pem)
    # The certificate is self-signed (CA:FALSE); OpenSSL's strict mode would refuse it as its
    # own trust anchor where curl, a browser or Python without strict mode accept it.
    ctx.verify_flags &= ~getattr(ssl, "VERIFY_X509_STRICT", 0)
    headers = {"Accept-Language": language} if language else {}
    try:
        conn = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=30)
        conn.request("GET", target, headers=headers)
        r = conn.getresponse()
        body = r.read()
        print(json.dumps({
            "status": r.status,
            "contentType": r.getheader("Content-Type"),
            "sha256": hashlib.sha256(body).hexdigest(),
            "body": body[:16384].decode("utf-8", "replace"),
        }))
    except Exception as e:
        print(json.dumps({"status": None, "error": repr(e)}))
    """
)


@dataclass(frozen=True)
class AccessTenant:
    cluster: ControlPlane
    name: str
    admins_ns: str
    client_ns: str
    certificate: str
    other_ca: str  # the test origin's CA: a certificate the listener's is not
    payloads: dict[str, Payload]
    workdir: Path

    @property
    def ns(self) -> str:
        return f"swg-{self.name}"

    @property
    def hostname(self) -> str:
        return f"proxy.{self.ns}.svc"


def _access_spec(name: str) -> dict[str, Any]:
    return {
        "access": {
            "hostname": f"proxy.swg-{name}.svc",
            "pac": {"enabled": True},
            "tls": {"enabled": True, "port": TLS_PORT, "plaintext": False},
        },
        "blockPage": {
            "defaultLanguage": "en",
            "title": TITLE,
            "contactText": "\n".join(CONTACT_LINES),
        },
        "options": {"bypass": {"domains": [BYPASS_DOMAIN]}},
        # Squid alone: the anti-virus is proven by e2e/test_node_tenants.py.
        "antivirus": {"enabled": False},
    }


def _published_certificate(cluster: ControlPlane, ns: str) -> str:
    def read() -> str | None:
        got = cluster.kubectl(
            "get", "configmap", "proxy-access-tls-cert", "-n", ns,
            "-o", "jsonpath={.data.tls\\.crt}", check=False,
        )  # fmt: skip
        return (
            got.stdout.strip()
            if got.returncode == 0 and "BEGIN CERTIFICATE" in got.stdout
            else None
        )

    certificate: str = wait_until(read, timeout=120, what=f"ConfigMap {ns}/proxy-access-tls-cert")
    return certificate


@pytest.fixture(scope="module")
def access(
    node_cluster: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AccessTenant]:
    cluster = node_cluster
    workdir = tmp_path_factory.mktemp("node-access")
    client_ns, admins_ns = installed_with_clients(cluster, "node-access")
    client_ip = run_pod(cluster, client_ns, client_pod("client-in"))["status"]["podIP"]
    name = unique_name("node-access")
    with node_origin(workdir, (DENIED_DOMAIN,)) as (_origin, payloads):
        cluster.apply(
            tenant(
                name,
                allowed=[f"{client_ip}/32"],
                admin=f"system:serviceaccount:{admins_ns}:alice",
                **_access_spec(name),
            )
        )
        wait_phase(cluster, name, "Ready", timeout=READY_TIMEOUT)
        certificate = _published_certificate(cluster, f"swg-{name}")
        other_ca = (workdir / "pki" / "origin-ca.crt").read_text()
        yield AccessTenant(
            cluster, name, admins_ns, client_ns, certificate, other_ca, payloads, workdir
        )
        clean_up(cluster, (name,), (client_ns, admins_ns))


def _tls_request(
    t: AccessTenant, target: str, *, language: str = "", certificate: str | None = None
) -> dict[str, Any]:
    pem = t.certificate if certificate is None else certificate
    out = py(
        t.cluster, t.client_ns, "client-in", TLS_REQUEST,
        t.hostname, str(TLS_PORT), pem, target, language,
    )  # fmt: skip
    result: dict[str, Any] = json.loads(out.splitlines()[-1])
    return result


def _can_connect(t: AccessTenant, address: str, port: int) -> bool:
    return py(t.cluster, t.client_ns, "client-in", CONNECT, address, str(port), "5") == "open"


def _admin_records(
    t: AccessTenant, found: Callable[[dict[str, Any]], bool], capsys: pytest.CaptureFixture[str]
) -> list[dict[str, Any]]:
    """The records of the tenant's log store that `found` picks, downloaded by its admin
    with `kubectl swg logs` (waiting until there are some)."""
    alice = service_account_kubeconfig(
        t.cluster, namespace=t.admins_ns, name="alice", path=t.workdir / "alice.kubeconfig"
    )
    out = t.workdir / "records.ndjson"

    def downloaded() -> list[dict[str, Any]] | None:
        out.unlink(missing_ok=True)
        code = kubectl_main(["logs", t.name, "--kubeconfig", str(alice), "-q", "--file", str(out)])
        capsys.readouterr()
        if code != 0 or not out.exists():
            return None
        records = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
        return [r for r in records if found(r)] or None

    records: list[dict[str, Any]] = wait_until(
        downloaded, timeout=180, what=f"records in {t.name}'s log store"
    )
    return records


def _clean_payload(t: AccessTenant) -> Payload:
    return next(p for p in t.payloads.values() if not p.infected and p.size < 1 << 20)


def test_an_allowed_client_is_served_through_the_tls_listener_and_logged(
    access: AccessTenant, capsys: pytest.CaptureFixture[str]
) -> None:
    clean = _clean_payload(access)
    url = f"http://{ORIGIN_IP}/files/{clean.name}"
    response = _tls_request(access, url)
    assert response["status"] == 200, response
    assert response["sha256"] == clean.sha256, response
    records = _admin_records(
        access,
        lambda r: r.get("type") == "access" and r.get("url") == url,
        capsys,
    )
    assert any(r["decision"] == "allow" and r["status"] == 200 for r in records), records


def test_a_client_trusting_another_certificate_gets_no_answer(access: AccessTenant) -> None:
    clean = _clean_payload(access)
    response = _tls_request(
        access, f"http://{ORIGIN_IP}/files/{clean.name}?untrusted", certificate=access.other_ca
    )
    assert response["status"] is None, response
    assert "CERTIFICATE_VERIFY_FAILED" in response["error"], response


def test_with_plaintext_false_only_the_tls_port_lets_the_client_in(access: AccessTenant) -> None:
    service = access.cluster.kubectl_json("get", "service", "proxy", "-n", access.ns)
    ports = {p["port"] for p in service["spec"]["ports"]}
    assert TLS_PORT in ports, service["spec"]["ports"]
    assert PROXY_PORT not in ports, service["spec"]["ports"]
    proxy = pod_ips(access.cluster, access.ns, "proxy")[0]
    assert _can_connect(access, proxy, TLS_PORT)
    assert not _can_connect(access, proxy, PROXY_PORT)


def _field(page: str, name: str) -> str:
    match = re.search(rf'<code id="{name}">([^<]*)</code>', page)
    assert match, page
    return match.group(1)


def _contact(page: str) -> str:
    match = re.search(r'<p id="contact">(.*?)</p>', page, re.S)
    assert match, page
    return html.unescape(re.sub(r"<br>\n?", "\n", match.group(1)))


@pytest.mark.parametrize(
    ("language", "expected"),
    [("ja", "ja"), ("ja-JP,ja;q=0.9,en;q=0.8", "ja"), ("en", "en"), ("", "en")],
)
def test_a_denied_domain_gets_the_block_page_in_the_browsers_language(
    access: AccessTenant, capsys: pytest.CaptureFixture[str], language: str, expected: str
) -> None:
    marker = unique_name(f"page-{expected}")
    url = f"http://www.{DENIED_DOMAIN}/{marker}.html"
    response = _tls_request(access, url, language=language)
    assert response["status"] == 403, response
    page = response["body"]
    assert f'<html lang="{expected}">' in page, page
    shown = html.unescape(page)  # the page writes non-ASCII text as character references
    assert ("カテゴリ" in shown) == (expected == "ja"), shown
    assert ("Category" in shown) == (expected == "en"), shown
    assert "<b>deny-domain</b>" in page, page
    assert html.unescape(re.search(r"<h1>(.*?)</h1>", page, re.S).group(1)) == TITLE  # type: ignore[union-attr]
    assert _contact(page) == "\n".join(CONTACT_LINES)
    request_id = _field(page, "request-id")
    digest = hashlib.sha256(request_id.encode()).hexdigest()[:20]
    records = _admin_records(access, lambda r: r.get("requestId") == digest, capsys)
    assert any(marker in str(r.get("url")) and r.get("decision") == "block" for r in records), (
        records
    )


def test_the_pac_file_is_served_over_tls_and_names_the_listener(access: AccessTenant) -> None:
    response = _tls_request(access, PAC_URL_PATH)
    assert response["status"] == 200, response
    assert response["contentType"] == "application/x-ns-proxy-autoconfig", response
    pac = response["body"]
    assert "FindProxyForURL" in pac, pac
    assert f'return "HTTPS {access.hostname}:{TLS_PORT}";' in pac, pac
    assert "PROXY " not in pac, pac
    assert f'var domains = ["{BYPASS_DOMAIN}"];' in pac, pac
    assert 'return "DIRECT";' in pac, pac
