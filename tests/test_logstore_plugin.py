"""`kubectl swg logs`: the request it makes, the Role rule that allows exactly it, progress,
and a real download from a running log store (`--server`, as with a port-forward)."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import tarfile
import urllib.request
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from devtools.processes import Proc, free_port, wait_http

from swg_logstore import __main__ as logstore_main
from swg_logstore.formats import LogType
from swg_operator.commands.log_download import (
    SERVICE_PORT_NAME,
    DownloadError,
    LogQuery,
    Progress,
    explain,
    lines_with_local_time,
    service_proxy_path,
    with_local_time,
    zone,
)
from swg_operator.commands.logs import kubectl_main
from swg_operator.render import context, rbac

QUERY = LogQuery(
    tenant="acme", log_type=LogType.ACCESS, first=date(2026, 11, 1), last=date(2026, 11, 26)
)


def test_download_goes_through_the_service_proxy_of_the_tenant_log_store() -> None:
    assert service_proxy_path(QUERY) == (
        "/api/v1/namespaces/swg-acme/services/logstore:http/proxy/v1/logs"
        "?type=access&from=2026-11-01&to=2026-11-26&format=ndjson"
    )


def test_the_admin_role_allows_exactly_that_request() -> None:
    resource_name = service_proxy_path(QUERY).split("/services/", 1)[1].split("/proxy", 1)[0]
    assert resource_name in rbac.log_export_proxy_names()
    assert SERVICE_PORT_NAME == context.LOGSTORE_HTTP_PORT_NAME


def test_image_contract_matches_the_renderer() -> None:
    assert logstore_main.HTTP_PORT == context.LOGSTORE_HTTP_PORT
    assert logstore_main.INGEST_PORT == context.LOGSTORE_INGEST_PORT
    assert logstore_main.STATE_DIR == context.STATE_DIR


@pytest.mark.parametrize(
    ("status", "words"),
    [(401, "credentials"), (403, "declared"), (404, "no log store"), (503, "retry")],
)
def test_errors_are_explained(status: int, words: str) -> None:
    body = RBAC_FORBIDDEN if status == 403 else "forbidden"
    assert words in explain(status, body, QUERY)


def test_progress_line_with_an_injected_clock() -> None:
    written: list[str] = []
    now = [100.0]
    progress = Progress(write=written.append, clock=lambda: now[0], days=3, interactive=True)
    progress.start()
    now[0] = 101.0
    progress.update(b'{"ts":"2026-11-24T00:00:00.000Z","type":"access"}\n' * 1000)
    now[0] = 102.0
    progress.update(b'{"ts":"2026-11-25T00:00:00.000Z","type":"access"}\n' * 1000)
    progress.finish()
    assert written[0] == "\rreceived 48.8 KiB, 1,000 records, day 2026-11-24 (1/3), 48.8 KiB/s"
    assert written[-1] == ("\rreceived 97.7 KiB, 2,000 records, day 2026-11-25 (2/3), 48.8 KiB/s\n")


# --- a real download ----------------------------------------------------------------------------


@pytest.fixture
def running_store(tmp_path: Path) -> Iterator[tuple[int, int]]:
    http_port, ingest_port = free_port(), free_port()
    proc = Proc(
        [
            sys.executable, "-m", "swg_logstore", "serve", "--root", str(tmp_path / "s"),
            "--tenant", "acme", "--service-code", "SWG-1", "--host", "127.0.0.1",
            "--display-time-zone", "Asia/Tokyo",
            "--http-port", str(http_port), "--ingest-port", str(ingest_port),
        ],
        tmp_path / "store.log",
    )  # fmt: skip
    proc.start()
    try:
        wait_http(f"http://127.0.0.1:{http_port}/healthz")
        today = datetime.now(UTC).date()
        for back in range(3):
            day = today - timedelta(days=back)
            records = [
                {
                    "off": n + 1,
                    "record": {
                        "ts": f"{day}T01:02:{n:02d}.000Z",
                        "type": "access",
                        "id": f"{day}-{n}:access",
                        "requestId": f"{day}-{n}",
                        "url": f"http://example.test/{n}",
                    },
                }
                for n in range(50)
            ]
            body = json.dumps({"stream": f"s{back}", "to": 50, "records": records}).encode()
            request = urllib.request.Request(
                f"http://127.0.0.1:{ingest_port}/v1/ingest",
                data=body,
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=10) as response:
                assert json.loads(response.read())["stored"] == 50
        yield http_port, ingest_port
    finally:
        proc.kill()


def test_plugin_downloads_a_date_range(
    running_store: tuple[int, int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    http_port, _ = running_store
    today = datetime.now(UTC).date()
    out = tmp_path / "access.ndjson"
    code = kubectl_main(
        [
            "logs", "acme", "--server", f"http://127.0.0.1:{http_port}", "--type", "access",
            "--from", str(today - timedelta(days=1)), "--to", str(today), "--file", str(out),
        ]
    )  # fmt: skip
    assert code == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 100
    assert {r["ts"][:10] for r in records} == {str(today - timedelta(days=1)), str(today)}
    assert {r["tenant"] for r in records} == {"acme"}
    assert "received" in capsys.readouterr().err
    assert not out.with_name("access.ndjson.part").exists()

    tar_path = tmp_path / "access.tar"
    code = kubectl_main(
        [
            "logs", "acme", "--server", f"http://127.0.0.1:{http_port}", "-o", "tar",
            "--from", str(today - timedelta(days=2)), "-q", "--file", str(tar_path),
        ]
    )  # fmt: skip
    assert code == 0
    with tarfile.open(tar_path) as tar:
        members = tar.getmembers()
        assert len(members) == 3
        data = tar.extractfile(members[0])
        assert data is not None
        assert len(gzip.decompress(data.read()).splitlines()) == 50


def test_plugin_reports_an_unreachable_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = kubectl_main(
        [
            "logs",
            "acme",
            "--server",
            f"http://127.0.0.1:{free_port()}",
            "--file",
            str(tmp_path / "x"),
        ]
    )
    assert code == 1
    assert "interrupted" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_kubectl_finds_the_plugin_on_path() -> None:
    plugin = Path(sys.executable).parent / "kubectl-swg"
    if not plugin.exists():
        pytest.skip("the package is not installed in this interpreter's environment")
    result = subprocess.run(
        [str(plugin), "logs", "--help"], capture_output=True, text=True, check=True
    )
    assert "--type" in result.stdout


def test_local_time_is_added_beside_the_utc_timestamp() -> None:
    tokyo = zone("Asia/Tokyo")
    line = b'{"ts":"2026-11-26T16:03:01.201Z","type":"access","url":"http://x/\xe3\x81\x82"}'
    record = json.loads(with_local_time(line, tokyo))
    assert list(record)[:3] == ["ts", "tsLocal", "type"]
    assert record["ts"] == "2026-11-26T16:03:01.201Z"
    assert record["tsLocal"] == "2026-11-27T01:03:01.201+09:00"
    assert record["url"] == "http://x/あ"
    chunks = [b'{"ts":"2026-11-26T00:00:00.000Z"}\n{"ts":"2026-', b'11-26T00:00:01.000Z"}\n']
    out = b"".join(lines_with_local_time(chunks, zone("UTC")))
    assert [json.loads(x)["tsLocal"] for x in out.splitlines()] == [
        "2026-11-26T00:00:00.000+00:00",
        "2026-11-26T00:00:01.000+00:00",
    ]
    with pytest.raises(DownloadError, match="unknown time zone"):
        zone("Mars/Olympus")


def test_plugin_adds_the_tenant_display_time_zone(
    running_store: tuple[int, int], tmp_path: Path
) -> None:
    http_port, _ = running_store
    out = tmp_path / "local.ndjson"
    # The day named: the records (01:02 UTC, 10:02 in Tokyo) are on the UTC date's Tokyo day,
    # and from 15:00 UTC on, Tokyo's today is the next one.
    day = str(datetime.now(UTC).date())
    code = kubectl_main(
        [
            "logs", "acme", "--server", f"http://127.0.0.1:{http_port}", "--local-time",
            "--to", day, "-q", "--file", str(out),
        ]
    )  # fmt: skip
    assert code == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 50
    assert all(r["tsLocal"].endswith("+09:00") for r in records)


# --- refusals: RBAC or an unreachable log store ----------------------------------------------

RBAC_FORBIDDEN = json.dumps(
    {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'services "logstore:http" is forbidden: User "bob" cannot get resource '
        '"services/proxy" in API group "" in the namespace "swg-acme"',
        "reason": "Forbidden",
        "details": {"name": "logstore:http", "kind": "services"},
        "code": 403,
    }
)
DIAL_FAILED = json.dumps(
    {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "error trying to reach service: dial tcp 10.244.1.7:8080: connect: "
        "connection refused",
        "reason": "ServiceUnavailable",
        "code": 503,
    }
)


@pytest.mark.parametrize(
    ("status", "body"),
    [
        # An HTTP proxy between the API server and the pod network refused the dial; the API
        # server passes its answer on as it is.
        (403, "resolve_deny"),
        (403, "<html><body><h1>403 Forbidden</h1>Access denied by proxy</body></html>"),
        (503, DIAL_FAILED),
        (500, "Internal Server Error: dial tcp: lookup logstore: resolve_deny"),
        (502, "Bad Gateway"),
        (504, ""),
    ],
)
def test_an_unreachable_log_store_is_not_reported_as_a_refusal(status: int, body: str) -> None:
    message = explain(status, body, QUERY)
    assert "may not" not in message, message
    assert "declared" not in message
    assert "not reachable" in message
    assert "LogStoreAvailable" in message  # where to look
    assert f"({status})" in message


def test_an_rbac_refusal_says_who_may_and_how_to_check() -> None:
    message = explain(403, RBAC_FORBIDDEN, QUERY)
    assert "may not download" in message
    assert "spec.admins" in message
    assert "kubectl auth can-i get services/logstore:http --subresource=proxy -n swg-acme" in (
        message
    )
    assert "not reachable" not in message
