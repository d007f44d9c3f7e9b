"""Tenant logs from real traffic: the data-plane test tenant's configuration exactly as
`swg-operator render` writes it (the templates carry the logging directives of
`swg_logstore.formats`), real Squid + c-icap + clamd in a loopback-only namespace, the
real shippers and log store as processes on 127.0.0.1. Traffic that is allowed, blocked by
category and by list, bypassed, EICAR down and up (HTTP and inspected HTTPS); meanwhile the log
store, the shippers and Squid are killed with SIGKILL and restarted. Then the downloaded logs are
compared with the traffic: every transaction Squid logged is stored exactly once, with the right
decision, category, verdict and signature, and the access and anti-virus records of one request
share its request id."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from devtools.processes import Proc, free_port, wait_http
from prometheus_client.parser import text_string_to_metric_families

from e2e.dataplane.conftest import (  # noqa: F401 - fixtures used by this module's tests
    TENANT_DATA,
    TENANT_SIGNATURES,
    RenderTenant,
    StartDataplane,
    dataplane_payloads,
    dataplane_rootfs,
    render_tenant,
    start_dataplane,
)
from e2e.dataplane.stack import DEFAULT_TEST_NAMES, DataplaneStack
from swg_logstore import formats
from swg_logstore.formats import (
    CICAP_ANTIVIRUS_LOG_PATH,
    SQUID_ACCESS_LOG_PATH,
    SourceKind,
)

pytestmark = pytest.mark.dataplane

TENANT = "dataplane-test"
SERVICE_CODE = "SWG-TEST-0001"
EICAR_SIGNATURE = "Custom.Test.EICAR-NDB.UNOFFICIAL"
STORED = f"swg_logstore_stored_total{{tenant={TENANT}}}"
ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture(scope="module")
def stack(
    start_dataplane: StartDataplane,  # noqa: F811
    render_tenant: RenderTenant,  # noqa: F811
) -> DataplaneStack:
    rendered = render_tenant(TENANT_DATA / "tenant.yaml")
    return start_dataplane(
        rendered, label="logs", names=DEFAULT_TEST_NAMES, extra_conf=TENANT_SIGNATURES
    )


def test_rendered_configuration_carries_the_log_directives(
    render_tenant: RenderTenant,  # noqa: F811
) -> None:
    """The daemons run the templates' logging lines, which are the log store's directives."""
    rendered = render_tenant(TENANT_DATA / "tenant.yaml")
    squid = (rendered / "squid.conf").read_text()
    assert formats.squid_logging_directives() in squid
    assert "access_log " not in squid.replace(formats.squid_logging_directives(), "")
    cicap = (rendered / "c-icap.conf").read_text()
    assert formats.cicap_logging_directives(service_names=("virus_scan", "avscan")) in cicap


class Pipeline:
    """The log store and the two shippers, as processes on this host (127.0.0.1)."""

    def __init__(self, stack: DataplaneStack, work: Path) -> None:
        self.http_port, ingest_port, self.metrics_port = free_port(), free_port(), free_port()
        python = [sys.executable, "-m", "swg_logstore"]
        self.store = Proc(
            [
                *python, "serve", "--root", str(work / "store"), "--tenant", TENANT,
                "--service-code", SERVICE_CODE, "--host", "127.0.0.1",
                "--http-port", str(self.http_port), "--ingest-port", str(ingest_port),
                "--metrics-port", str(self.metrics_port),
            ],
            work / "store.log",
        )  # fmt: skip
        self.shippers: list[Proc] = []
        for kind, pod, path in (
            (SourceKind.SQUID_ACCESS, "proxy", SQUID_ACCESS_LOG_PATH),
            (SourceKind.CICAP_ANTIVIRUS, "antivirus", CICAP_ANTIVIRUS_LOG_PATH),
        ):
            argv = [*python, "ship", "--store", f"http://127.0.0.1:{ingest_port}"]
            argv += ["--source", f"{kind.value}={stack.host_path(pod, path)}"]
            argv += ["--state-dir", str(stack.state_dir(pod) / "shipper")]
            argv += ["--poll-interval", "0.05", "--linger", "1"]
            self.shippers.append(Proc(argv, work / f"shipper-{pod}.log"))
        self.work = work

    def start(self) -> None:
        self.store.start()
        wait_http(f"http://127.0.0.1:{self.http_port}/healthz")
        for shipper in self.shippers:
            shipper.start()
        self.wait_for_shippers()

    def wait_for_shippers(self) -> None:
        """Until each shipper handles SIGTERM (it logs so): before that a SIGTERM kills it."""
        deadline = time.monotonic() + 120
        for name in ("shipper-proxy.log", "shipper-antivirus.log"):
            log = self.work / name
            while not (log.exists() and "Shipper started" in log.read_text()):
                assert time.monotonic() < deadline, f"{name}: the shipper did not start"
                time.sleep(0.1)

    def drain(self) -> None:
        for shipper in self.shippers:
            assert shipper.process is not None
            shipper.process.send_signal(signal.SIGTERM)
        for shipper in self.shippers:
            assert shipper.process is not None
            assert shipper.process.wait(timeout=60) == 0

    def download(self, log_type: str) -> list[dict[str, Any]]:
        today = datetime.now(UTC).date()
        query = f"type={log_type}&from={today - timedelta(days=1)}&to={today + timedelta(days=1)}"
        url = f"http://127.0.0.1:{self.http_port}/v1/logs?{query}"
        with urllib.request.urlopen(url, timeout=60) as response:
            return [json.loads(line) for line in response.read().splitlines()]

    def figures(self) -> dict[str, float]:
        """Every sample of the store's /metrics as {'name{k=v,...}': value}."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=30) as response:
            text = response.read().decode()
        out: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
                out[f"{s.name}{{{labels}}}"] = s.value
        return out

    def settled_figures(self) -> dict[str, float]:
        """The figures once two scrapes a second apart agree (the shippers caught up)."""
        last = self.figures()
        for _ in range(60):
            time.sleep(1)
            now = self.figures()
            if now.get(STORED) == last.get(STORED):
                return now
            last = now
        raise AssertionError("the log store kept storing records for a minute")

    def close(self) -> None:
        for proc in (*self.shippers, self.store):
            proc.kill()


@pytest.fixture
def pipeline(stack: DataplaneStack, tmp_path: Path) -> Iterator[Pipeline]:
    pipe = Pipeline(stack, tmp_path)
    pipe.start()
    yield pipe
    pipe.close()


def _kill_squid(stack: DataplaneStack) -> None:
    daemon = stack.daemons.pop("squid")
    with contextlib.suppress(ProcessLookupError):
        os.killpg(daemon.process.pid, signal.SIGKILL)
    daemon.process.wait(timeout=30)
    stack.start_daemon("squid")


def test_real_traffic_gives_linked_records_and_survives_kills(
    stack: DataplaneStack, pipeline: Pipeline
) -> None:
    sent: dict[str, int] = {}  # URL -> HTTP status the client got

    def get(url: str, **options: Any) -> int:
        response = stack.request(url, **options)
        assert response.status, f"{url}: {response.error}"
        sent[url] = response.status
        return response.status

    def bulk(label: str, count: int) -> None:
        for n in range(count):
            get(f"http://clean.test/{label}/{n}")

    assert get("http://clean.test/files/hello.txt") == 200
    assert get("http://poker.test/play") == 403  # category gambling
    assert get("http://denied.test/page") == 403  # tenant deny list
    assert get("http://www.casino.test/lobby") in (200, 404)  # allow list beats the category
    assert get("http://bypass.test/files/eicar.com") == 200  # bypass: never scanned
    assert get("http://clean.test/files/eicar.com") == 403
    upload = stack.request(
        "http://clean.test/upload/eicar-up.com",
        method="PUT",
        upload=stack.payloads["eicar.com"].path,
    )
    assert upload.status == 403
    sent["http://clean.test/upload/eicar-up.com"] = 403
    https_eicar = "https://clean.test/files/eicar.zip"
    assert get(https_eicar, cacert=stack.pki.inspection_ca_cert) == 403
    bulk("before", 15)

    pipeline.store.kill()  # the log store dies while traffic goes on
    bulk("store-down", 10)
    pipeline.store.start()
    for shipper in pipeline.shippers:  # both shippers die
        shipper.kill()
    bulk("shippers-down", 10)
    for shipper in pipeline.shippers:
        shipper.start()
    bulk("after", 5)
    stack.wait_for_log("proxy", SQUID_ACCESS_LOG_PATH, r"clean\.test/after/4")
    _kill_squid(stack)  # Squid dies with everything it logged on the emptyDir
    bulk("squid-restarted", 10)
    stack.wait_for_log("proxy", SQUID_ACCESS_LOG_PATH, r"clean\.test/squid-restarted/9")
    pipeline.drain()

    access = pipeline.download("access")
    urlfilter = pipeline.download("urlfilter")
    antivirus = pipeline.download("antivirus")

    # every record well-formed, none twice
    for records in (access, urlfilter, antivirus):
        ids = Counter(r["id"] for r in records)
        assert max(ids.values()) == 1, [i for i, c in ids.items() if c > 1]
        for record in records:
            assert ISO_MS.match(record["ts"])
            assert (record["tenant"], record["serviceCode"]) == (TENANT, SERVICE_CODE)
            assert record["requestId"]

    # every request the clients sent is in the access log exactly once, with its status
    by_url: dict[str, list[dict[str, Any]]] = {}
    for record in access:
        by_url.setdefault(record["url"], []).append(record)
    for url, status in sent.items():
        if url.startswith("https://"):
            continue
        assert len(by_url.get(url, [])) == 1, url
        assert by_url[url][0]["status"] == status, url
    for label, count in (("before", 15), ("store-down", 10), ("shippers-down", 10)):
        assert all(f"http://clean.test/{label}/{n}" in by_url for n in range(count))
    assert all(f"http://clean.test/squid-restarted/{n}" in by_url for n in range(10))
    (https,) = by_url[https_eicar]
    assert (https["tls"], https["av"], https["avSignature"]) == (
        "bump",
        "infected",
        EICAR_SIGNATURE,
    )
    assert by_url["clean.test:443"][0]["method"] == "CONNECT"

    # URL filtering: the rule that decided, with its category or list
    filtered = {r["url"]: r for r in urlfilter}
    poker = filtered["http://poker.test/play"]
    assert (poker["decision"], poker["category"], poker["list"]) == (
        "block",
        "gambling",
        "category",
    )
    denied = filtered["http://denied.test/page"]
    assert (denied["decision"], denied["list"]) == ("block", "deny-domain")
    assert filtered["http://www.casino.test/lobby"]["list"] == "allow-domain"
    assert filtered["http://bypass.test/files/eicar.com"]["decision"] == "bypass"
    assert "http://clean.test/files/hello.txt" not in filtered  # default allow: no filter record
    assert by_url["http://bypass.test/files/eicar.com"][0]["av"] == "not-scanned"

    # anti-virus: verdicts and signatures, linked to the access records by request id
    scans = {(r["url"], r["direction"]): r for r in antivirus}
    download = scans[("http://clean.test/files/eicar.com", "download")]
    assert (download["verdict"], download["signature"]) == ("infected", EICAR_SIGNATURE)
    assert download["requestId"] == by_url["http://clean.test/files/eicar.com"][0]["requestId"]
    up = scans[("http://clean.test/upload/eicar-up.com", "upload")]
    assert (up["verdict"], up["signature"]) == ("infected", EICAR_SIGNATURE)
    assert scans[(https_eicar, "download")]["requestId"] == https["requestId"]
    clean = scans[("http://clean.test/files/hello.txt", "download")]
    assert clean["verdict"] == "clean"
    assert clean["requestId"] == by_url["http://clean.test/files/hello.txt"][0]["requestId"]
    assert not any(r["url"].startswith("http://bypass.test/") for r in antivirus)
    access_ids = {r["requestId"] for r in access}
    assert all(r["requestId"] in access_ids for r in antivirus)
    for name in ("shipper-proxy.log", "shipper-antivirus.log"):
        assert "malformed" not in (pipeline.work / name).read_text()


def test_real_traffic_moves_the_data_plane_figures(
    stack: DataplaneStack, pipeline: Pipeline
) -> None:
    """/metrics of the log store counts what went through the real Squid, c-icap and clamd."""
    before = pipeline.settled_figures()
    assert stack.request("http://clean.test/files/hello.txt").status == 200
    assert stack.request("http://poker.test/play").status == 403  # category gambling
    assert stack.request("http://denied.test/page").status == 403  # tenant deny list
    assert stack.request("http://clean.test/files/eicar.com").status == 403  # EICAR
    stack.wait_for_log("proxy", SQUID_ACCESS_LOG_PATH, r"clean\.test/files/eicar\.com")
    pipeline.drain()
    after = pipeline.figures()

    def delta(name: str, **labels: str) -> float:
        pairs = sorted((labels | {"tenant": TENANT}).items())
        key = f"{name}{{{','.join(f'{k}={v}' for k, v in pairs)}}}"
        return after.get(key, 0.0) - before.get(key, 0.0)

    requests = "swg_dataplane_requests_total"
    assert (delta(requests, decision="allow"), delta(requests, decision="block")) == (2, 2)
    decisions = "swg_dataplane_decisions_total"
    assert delta(decisions, decision="block", category="gambling", list="category") == 1
    assert delta(decisions, decision="block", category="none", list="deny-domain") == 1
    verdicts = "swg_dataplane_antivirus_verdicts_total"
    assert delta(verdicts, direction="download", verdict="infected") == 1
    assert delta(verdicts, direction="download", verdict="clean") == 1
    assert delta("swg_dataplane_request_duration_seconds_count") == 4
    assert delta("swg_dataplane_bytes_total", direction="out") > 0
    assert delta("swg_dataplane_scanner_errors_total", source="proxy") == 0
    assert delta("swg_logstore_ingest_lag_seconds_count") >= 6  # 4 access + 2 scans (+ urlfilter)
    assert after[f"swg_logstore_disk_bytes{{tenant={TENANT},type=access}}"] > 0
