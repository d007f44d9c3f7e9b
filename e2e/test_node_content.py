"""Content controls and the sandbox on the real node (`make test-node`; root):
`spec.contentControls` (true file types, SafeSearch and YouTube's restricted mode) and
`spec.options.sandbox` with its failure policy.

Two tenants run their pods on the real node, installed by the chart as in
e2e/test_node_tenants.py; the client is a pod in both tenants' `clients.allowedCIDRs`. The
"internet" is the test origin (`e2e.node.origin`), which also plays the public sites: the
cluster's DNS answers their names with its address and the proxies trust its CA as they trust a
public CA (`e2e.node.sites`). The sandbox analyser is a second, real c-icap + clamd with a
signature set of its own, serving `icaps://` on the origin's address (`e2e.node.analyser`).
Every packet stays on this machine.

What is proven here:
* true file types (`contentControls.fileTypes.blocked: [executable]`, anti-virus on): an ELF
  served as readme.txt and a PE as invoice.pdf, over HTTP and in decrypted HTTPS, and an
  encrypted zip served as holiday.jpg are refused by their content (403 naming the
  signature), each logged with verdict `file-type` / `encrypted` and the signature in the
  access record the tenant's admin downloads; a plain text file and a zip of text pass byte
  for byte, logged `clean`;
* SafeSearch with HTTPS inspection on: a Google or Bing search without the strict parameter is
  redirected (302) to the same URL with it and the redirected search reaches the site with it,
  one that turns it off is refused with the block page; both are logged (`safe-search`) in the
  URL-filter log; a YouTube request reaches the site with `YouTube-Restrict: Strict` whatever
  the client sent, and is logged as decrypted;
* the sandbox alone (anti-virus off): the proxy reaches the analyser through the NetworkPolicy
  the operator rendered, over TLS with its certificate checked; the analyser refuses a file the
  platform's signatures (EICAR only) let through and passes a clean one, and the sandbox log
  records both verdicts; with the analyser stopped, the default (fail closed) refuses a
  download (5xx) and logs the error; with `failOpen: true` the download passes and the error
  is logged.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from devtools import rootfs

from e2e.cluster import ControlPlane, unique_name, wait_until
from e2e.dataplane.analyser import write_analyser_conf
from e2e.dataplane.conftest import TENANT_DATA, TENANT_SETTINGS, TENANT_SIGNATURES
from e2e.dataplane.filetypes import tiny_pe
from e2e.dataplane.payloads import Payload, encrypted_zip_of
from e2e.node.analyser import ANALYSER_HOST, ANALYSER_URL, NodeAnalyser
from e2e.node.origin import ORIGIN_IP, NodeSite, node_site
from e2e.node.sites import public_names, trust_origin_ca
from e2e.node.tenants import (
    DENIED_DOMAIN,
    PROXY_PORT,
    READY_TIMEOUT,
    admin_records,
    clean_up,
    client_pod,
    installed_with_clients,
    py,
    run_pod,
    tenant,
)
from e2e.operator_process import wait_phase

pytestmark = [pytest.mark.node, pytest.mark.timeout(1200)]

GOOGLE, BING, YOUTUBE = "www.google.com", "www.bing.com", "www.youtube.com"
DOWNLOADS = "downloads.test"  # a site served over HTTPS, for file types in decrypted HTTPS
SITE_NAMES = (GOOGLE, BING, YOUTUBE, DOWNLOADS, ANALYSER_HOST)
CUSTOM_SAMPLE = "custom-sample.bin"
CUSTOM_SIGNATURE = "Swg.Test.CustomSample.UNOFFICIAL"
ELF_SIGNATURE = "SWG.FileType.Executable.ELF.UNOFFICIAL"
PE_SIGNATURE = "SWG.FileType.Executable.PE.UNOFFICIAL"

# Runs in a client pod: one GET through the proxy at argv[1]:argv[2]. An http:// URL is sent
# to the proxy as is; an https:// one through a CONNECT tunnel, trusting only the PEM in
# argv[4] (the tenant's inspection CA). argv[5]: request headers as JSON. Prints JSON
# {status, location, sha256, body (first 16 KiB)} or {status: null, error}.
REQUEST = textwrap.dedent(
    """
    import hashlib, http.client, json, ssl, sys, urllib.parse
    proxy, port, url, pem, headers = sys.argv[1:6]
    u = urllib.parse.urlsplit(url)
    try:
        if u.scheme == "https":
            ctx = ssl.create_default_context(cadata=pem)
            # Squid's generated certificates do not meet OpenSSL's strict mode; browsers and
            # curl accept them.
            ctx.verify_flags &= ~getattr(ssl, "VERIFY_X509_STRICT", 0)
            conn = http.client.HTTPSConnection(proxy, int(port), context=ctx, timeout=60)
            conn.set_tunnel(u.hostname, u.port or 443)
            target = u.path + ("?" + u.query if u.query else "")
        else:
            conn = http.client.HTTPConnection(proxy, int(port), timeout=60)
            target = url
        conn.request("GET", target, headers=json.loads(headers))
        r = conn.getresponse()
        body = r.read()
        print(json.dumps({
            "status": r.status,
            "location": r.getheader("Location"),
            "sha256": hashlib.sha256(body).hexdigest(),
            "body": body[:16384].decode("utf-8", "replace"),
        }))
    except Exception as e:
        print(json.dumps({"status": None, "error": repr(e)}))
    """
)


@dataclass(frozen=True)
class Site:
    """The origin in its public roles, its analyser, and the pods' shared namespaces."""

    cluster: ControlPlane
    site: NodeSite
    analyser: NodeAnalyser
    client_ns: str
    admins_ns: str
    client_ip: str
    workdir: Path

    @property
    def payloads(self) -> dict[str, Payload]:
        return self.site.payloads

    @property
    def ca_pem(self) -> str:
        return self.site.pki.origin_ca_cert.read_text()


@dataclass(frozen=True)
class NodeTenant:
    site: Site
    name: str

    @property
    def ns(self) -> str:
        return f"swg-{self.name}"

    @property
    def cluster(self) -> ControlPlane:
        return self.site.cluster


def _disguised(directory: Path) -> dict[str, Payload]:
    """Files whose names and extensions say nothing of what they are."""
    files = {
        "invoice.pdf": tiny_pe(),
        "holiday.jpg": encrypted_zip_of("notes.txt", b"nothing but text\n" * 64),
    }
    out = {}
    for name, data in files.items():
        path = directory / name
        path.write_bytes(data)
        out[name] = Payload(name, path, len(data), hashlib.sha256(data).hexdigest(), False)
    return out


def _render_antivirus(workdir: Path) -> Path:
    """The anti-virus configuration `swg-operator render` writes for the data-plane tier's
    main test tenant: the analyser's, before its listener is changed."""
    out = workdir / "render"
    subprocess.run(
        [sys.executable, "-m", "swg_operator.cli", "render", str(TENANT_DATA / "tenant.yaml"),
         "--output-dir", str(out), "--overwrite", "--settings", str(TENANT_SETTINGS),
         "--catalogue", str(TENANT_DATA / "catalogue")],
        check=True, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    return out / "config"


@pytest.fixture(scope="module")
def site(node_cluster: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    cluster = node_cluster
    workdir = tmp_path_factory.mktemp("node-content")
    client_ns, admins_ns = installed_with_clients(cluster, "node-content")
    client_ip = run_pod(cluster, client_ns, client_pod("client-in"))["status"]["podIP"]
    names = {name: ORIGIN_IP for name in SITE_NAMES}
    with node_site(workdir, (DENIED_DOMAIN, *SITE_NAMES)) as node, public_names(cluster, names):
        with node.origin.state.lock:
            node.payloads.update(_disguised(workdir / "payloads"))
        conf = write_analyser_conf(
            _render_antivirus(workdir),
            workdir / "analyser-conf",
            cert=node.pki.origin_cert,
            key=node.pki.origin_key,
            signatures=TENANT_SIGNATURES,  # EICAR and the project's custom sample
        )
        analyser = NodeAnalyser(node.ns, rootfs.build().root, conf, workdir / "analyser")
        analyser.start()
        try:
            yield Site(cluster, node, analyser, client_ns, admins_ns, client_ip, workdir)
        finally:
            analyser.stop()
            clean_up(cluster, (), (client_ns, admins_ns))


def _install(site: Site, prefix: str, admin: str, **spec: Any) -> Iterator[NodeTenant]:
    name = unique_name(prefix)
    cluster = site.cluster
    cluster.apply(
        tenant(
            name,
            allowed=[f"{site.client_ip}/32"],
            admin=f"system:serviceaccount:{site.admins_ns}:{admin}",
            **spec,
        )
    )
    wait_phase(cluster, name, "Ready", timeout=READY_TIMEOUT)
    trust_origin_ca(cluster, f"swg-{name}", site.ca_pem)
    yield NodeTenant(site, name)
    clean_up(cluster, (name,), ())


@pytest.fixture(scope="module")
def content(site: Site) -> Iterator[NodeTenant]:
    yield from _install(
        site,
        "node-content",
        "alice",
        antivirus={"enabled": True, "failOpen": False},
        options={"httpsInspection": {"enabled": True}},
        contentControls={
            "fileTypes": {"blocked": ["executable"]},
            "safeSearch": {"enabled": True, "youtube": "Strict"},
        },
    )


@pytest.fixture(scope="module")
def sandbox(site: Site, content: NodeTenant) -> Iterator[NodeTenant]:
    """After `content`: the two tenants' tests do not interleave."""
    yield from _install(
        site,
        "node-sandbox",
        "bob",
        antivirus={"enabled": False},
        options={"sandbox": {"enabled": True, "icapURL": ANALYSER_URL}},
    )


def _inspection_ca(t: NodeTenant) -> str:
    def read() -> str | None:
        got = t.cluster.kubectl(
            "get", "configmap", "https-inspection-ca-cert", "-n", t.ns,
            "-o", "jsonpath={.data.ca\\.crt}", check=False,
        )  # fmt: skip
        return got.stdout.strip() if "BEGIN CERTIFICATE" in got.stdout else None

    pem: str = wait_until(read, timeout=120, what=f"ConfigMap {t.ns}/https-inspection-ca-cert")
    return pem


def _request(t: NodeTenant, url: str, *, headers: dict[str, str] | None = None) -> dict[str, Any]:
    pem = _inspection_ca(t) if url.startswith("https://") else ""
    out = py(
        t.cluster, t.site.client_ns, "client-in", REQUEST,
        f"proxy.{t.ns}.svc", str(PROXY_PORT), url, pem, json.dumps(headers or {}),
    )  # fmt: skip
    result: dict[str, Any] = json.loads(out.splitlines()[-1])
    return result


def _records(
    t: NodeTenant,
    log_type: str,
    found: Callable[[dict[str, Any]], bool],
    capsys: pytest.CaptureFixture[str],
) -> list[dict[str, Any]]:
    """The records of one log of the tenant's store that `found` picks, downloaded by its
    admin with `kubectl swg logs` (waiting until there are some)."""
    return admin_records(
        t.cluster,
        t.name,
        admins_ns=t.site.admins_ns,
        workdir=t.site.workdir,
        log_type=log_type,
        found=found,
        capsys=capsys,
    )


def _logged(url: str) -> str:
    """A URL as the logs keep it: Squid strips the query (strip_query_terms), "?" stays."""
    return url.split("?", 1)[0] + "?" if "?" in url else url


def _access_record(t: NodeTenant, url: str, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    records = _records(t, "access", lambda r: r.get("url") == _logged(url), capsys)
    return records[-1]


# --- item 5: content controls ------------------------------------------------------------------

REFUSED = {
    f"http://{ORIGIN_IP}/files/readme.txt": ("file-type", ELF_SIGNATURE),
    f"http://{ORIGIN_IP}/files/invoice.pdf": ("file-type", PE_SIGNATURE),
    f"https://{DOWNLOADS}/files/readme.txt": ("file-type", ELF_SIGNATURE),
    f"http://{ORIGIN_IP}/files/holiday.jpg": ("encrypted", "Heuristics.Encrypted.Zip"),
}


@pytest.mark.parametrize("url", sorted(REFUSED))
def test_files_are_refused_by_what_they_are_not_by_their_names(
    content: NodeTenant, capsys: pytest.CaptureFixture[str], url: str
) -> None:
    verdict, signature = REFUSED[url]
    response = _request(content, url)
    assert response["status"] == 403, response
    assert signature in response["body"], response
    record = _access_record(content, url, capsys)
    assert (record["av"], record["avSignature"]) == (verdict, signature), record
    assert record["status"] == 403, record


@pytest.mark.parametrize("name", ["plain.txt", "text-inside.zip"])
def test_other_files_pass_byte_for_byte(
    content: NodeTenant, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    url = f"http://{ORIGIN_IP}/files/{name}"
    response = _request(content, url)
    assert response["status"] == 200, response
    assert response["sha256"] == content.site.payloads[name].sha256, response
    record = _access_record(content, url, capsys)
    assert (record["av"], record["status"]) == ("clean", 200), record


@pytest.mark.parametrize(
    ("url", "param"),
    [
        (f"https://{GOOGLE}/search?q=node", "safe=active"),
        (f"https://{BING}/search?q=node", "adlt=strict"),
    ],
)
def test_a_search_is_redirected_to_safe_search_and_logged(
    content: NodeTenant, capsys: pytest.CaptureFixture[str], url: str, param: str
) -> None:
    marker = unique_name("q")
    url = f"{url}-{marker}"
    first = _request(content, url)
    assert first["status"] == 302, first
    assert first["location"] == f"{url}&{param}", first
    second = _request(content, first["location"])
    assert second["status"] == 200, second
    host = url.split("/")[2]
    path = first["location"].split(host, 1)[1]
    assert ("GET", host, path) in content.site.site.origin.requests()
    seen = [p for _m, _h, p in content.site.site.origin.requests() if marker in p]
    assert all(param in p for p in seen), seen  # the site never saw the search without it
    records = _records(content, "urlfilter", lambda r: r.get("url") == _logged(url), capsys)
    assert any(r["list"] == "safe-search" and r["decision"] == "allow" for r in records), records
    # The redirect and the redirected search share the URL as logged (no query).
    redirects = _records(
        content,
        "access",
        lambda r: r.get("url") == _logged(url) and r.get("status") == 302,
        capsys,
    )
    assert all(r["tls"] == "bump" for r in redirects), redirects


def test_a_search_that_turns_safe_search_off_is_refused_and_logged(
    content: NodeTenant, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"https://{GOOGLE}/search?q={unique_name('off')}&safe=off"
    response = _request(content, url)
    assert response["status"] == 403, response
    assert "safe-search" in response["body"], response
    records = _records(content, "urlfilter", lambda r: r.get("url") == _logged(url), capsys)
    assert any(r["list"] == "safe-search" and r["decision"] == "block" for r in records), records


def test_youtube_requests_carry_restricted_mode(
    content: NodeTenant, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"https://{YOUTUBE}/header-list?{unique_name('yt')}"
    response = _request(content, url, headers={"YouTube-Restrict": "Off"})
    assert response["status"] == 200, response
    values = [v for k, v in json.loads(response["body"]) if k.lower() == "youtube-restrict"]
    assert values == ["Strict"], response
    other = _request(content, f"https://{DOWNLOADS}/header-list")
    assert other["status"] == 200, other
    assert "youtube-restrict" not in {k.lower() for k, _ in json.loads(other["body"])}
    record = _access_record(content, url, capsys)
    assert (record["status"], record["tls"], record["decision"]) == (200, "bump", "allow"), record


# --- item 6: the sandbox -----------------------------------------------------------------------


def _sandbox_records(
    t: NodeTenant, url: str, capsys: pytest.CaptureFixture[str]
) -> list[dict[str, Any]]:
    return _records(t, "sandbox", lambda r: r.get("url") == _logged(url), capsys)


def test_the_sandbox_refuses_what_the_platform_signatures_let_through(
    sandbox: NodeTenant, capsys: pytest.CaptureFixture[str]
) -> None:
    sample = f"http://{ORIGIN_IP}/files/{CUSTOM_SAMPLE}"
    clean_url = f"http://{ORIGIN_IP}/files/hello.txt"
    refused = _request(sandbox, sample)
    assert refused["status"] == 403, refused
    assert CUSTOM_SIGNATURE in refused["body"], refused
    clean = _request(sandbox, clean_url)
    assert clean["status"] == 200, clean
    assert clean["sha256"] == sandbox.site.payloads["hello.txt"].sha256, clean
    malicious = _sandbox_records(sandbox, sample, capsys)
    assert any((r["verdict"], r["threat"]) == ("malicious", CUSTOM_SIGNATURE) for r in malicious), (
        malicious
    )
    passed = _sandbox_records(sandbox, clean_url, capsys)
    assert any(r["verdict"] == "clean" for r in passed), passed
    # The platform's own scanner would have let the sample through: it knows EICAR only, and
    # with anti-virus off there is none in this tenant.
    assert (
        sandbox.cluster.kubectl_json(
            "get", "pods", "-n", sandbox.ns, "-l", "app.kubernetes.io/component=antivirus"
        )["items"]
        == []
    )
    access = _access_record(sandbox, sample, capsys)
    assert access["status"] == 403, access


def test_the_sandbox_fails_closed_by_default(
    sandbox: NodeTenant, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"http://{ORIGIN_IP}/files/clean-1KiB.bin"  # fetched by this test only
    sandbox.site.analyser.stop()
    try:
        response = _request(sandbox, url)
        assert response["status"] is not None, response
        assert response["status"] >= 500, response
        records = _sandbox_records(sandbox, url, capsys)
        assert all(r["verdict"] == "error" for r in records), records
    finally:
        sandbox.site.analyser.start()


def test_with_fail_open_a_download_passes_and_is_logged(
    sandbox: NodeTenant, capsys: pytest.CaptureFixture[str]
) -> None:
    cluster = sandbox.cluster
    before = cluster.kubectl_json("get", "swg", sandbox.name)["metadata"]["generation"]
    cluster.kubectl(
        "patch", "swg", sandbox.name, "--type=merge", "-p",
        json.dumps({"spec": {"options": {"sandbox": {"failOpen": True}}}}),
    )  # fmt: skip
    wait_phase(cluster, sandbox.name, "Ready", generation=before + 1, timeout=READY_TIMEOUT)
    wait_until(
        lambda: "respmod_precache bypass=on" in _squid_conf(sandbox),
        timeout=240,
        what="the proxy running with the sandbox fail open",
    )
    trust_origin_ca(cluster, sandbox.ns, sandbox.site.ca_pem)
    url = f"http://{ORIGIN_IP}/files/plain.txt"  # fetched by this test only
    sandbox.site.analyser.stop()
    try:
        response = _request(sandbox, url)
        assert response["status"] == 200, response
        assert response["sha256"] == sandbox.site.payloads["plain.txt"].sha256, response
        records = _sandbox_records(sandbox, url, capsys)
        assert all(r["verdict"] == "error" for r in records), records
    finally:
        sandbox.site.analyser.start()


def _squid_conf(t: NodeTenant) -> str:
    """The squid.conf of the tenant's running proxy pods (empty while more than one version
    runs, during a rollout)."""
    pods = [
        p
        for p in t.cluster.kubectl_json(
            "get", "pods", "-n", t.ns, "-l", "app.kubernetes.io/component=proxy"
        )["items"]
        if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")
    ]
    confs = {_read_squid_conf(t, p["metadata"]["name"]) for p in pods}
    return confs.pop() if len(confs) == 1 else ""


def _read_squid_conf(t: NodeTenant, pod: str) -> str:
    return t.cluster.kubectl(
        "exec", pod, "-n", t.ns, "-c", "squid", "--", "cat", "/etc/swg/conf/squid.conf",
        check=False,
    ).stdout  # fmt: skip
