"""The log store's and the shipper's own log lines: text or JSON (`--log-format`), every line
with the tenant, a line about one exchange with its request id, the same id on both sides."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer
from devtools.processes import Proc, free_port, wait_for, wait_http

from swg_logstore import __main__ as logstore_main
from swg_logstore.logs import REQUEST_ID_HEADER, configure
from swg_logstore.server import download_app
from swg_logstore.shipper import StoreClient, StoreUnavailableError
from swg_logstore.store import LogStore, StoreConfig


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    out = io.StringIO()
    yield out
    logging.getLogger("swg_logstore").handlers.clear()


def test_json_lines_carry_the_tenant_and_the_request_id(captured: io.StringIO) -> None:
    configure("json", tenant="acme", stream=captured)
    log = logging.getLogger("swg_logstore.shipper")
    log.warning("Shipper could not reach the log store: %s", "refused", extra={"request_id": "r1"})
    log.info("Shipper reached the log store again")
    first, second = (json.loads(line) for line in captured.getvalue().splitlines())
    assert first["msg"] == "Shipper could not reach the log store: refused"
    assert first["level"] == "warning"
    assert first["logger"] == "swg_logstore.shipper"
    assert first["tenant"] == "acme"
    assert first["requestId"] == "r1"
    assert first["ts"].endswith("Z")
    assert "requestId" not in second
    assert second["tenant"] == "acme"


def test_text_lines_end_with_their_fields(captured: io.StringIO) -> None:
    configure("text", tenant="acme", stream=captured)
    logging.getLogger("swg_logstore.server").error(
        "Log store failed to write a batch: %s", "disk full", extra={"request_id": "r2"}
    )
    assert captured.getvalue() == (
        "Log store failed to write a batch: disk full tenant=acme requestId=r2\n"
    )


def test_an_unknown_log_format_is_refused_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="'yaml'"):
        configure("yaml", tenant=None)
    monkeypatch.setenv("SWG_LOG_FORMAT", "yaml")
    with pytest.raises(SystemExit) as exited:
        logstore_main.main(["ship", "--store", "http://127.0.0.1:1", "--source", "squid-access"])
    assert exited.value.code == 2


def test_the_store_logs_a_download_with_the_callers_request_id(
    tmp_path: Path, captured: io.StringIO
) -> None:
    configure("json", tenant="acme", stream=captured)
    store = LogStore(
        StoreConfig(root=tmp_path, tenant="acme", service_code="SWG-1", retention_days=30)
    )

    async def main() -> None:
        async with TestServer(download_app(store)) as server, ClientSession() as session:
            url = server.make_url("/v1/logs?type=nonsense")
            async with session.get(url, headers={REQUEST_ID_HEADER: "caller-1"}) as response:
                assert response.status == 400
                assert response.headers[REQUEST_ID_HEADER] == "caller-1"
            async with session.get(server.make_url("/v1/logs?type=access")) as response:
                assert response.status == 200
                assert len(response.headers[REQUEST_ID_HEADER]) == 16
                assert await response.read() == b""  # nothing stored yet

    asyncio.run(main())
    refused, answered = (json.loads(line) for line in captured.getvalue().splitlines())
    assert refused["requestId"] == "caller-1"
    assert (refused["status"], refused["path"], refused["tenant"]) == (400, "/v1/logs", "acme")
    assert answered["status"] == 200
    assert answered["requestId"] not in ("caller-1", None)


def test_the_shipper_and_the_store_log_the_same_request_id(tmp_path: Path) -> None:
    http_port, ingest_port = free_port(), free_port()
    log_file = tmp_path / "store.log"
    store = Proc(
        [
            sys.executable, "-m", "swg_logstore", "serve", "--root", str(tmp_path / "s"),
            "--tenant", "acme", "--service-code", "SWG-1", "--host", "127.0.0.1",
            "--http-port", str(http_port), "--ingest-port", str(ingest_port),
            "--log-format", "json",
        ],
        log_file,
    )  # fmt: skip
    store.start()
    try:
        wait_http(f"http://127.0.0.1:{http_port}/healthz")
        client = StoreClient(f"http://127.0.0.1:{ingest_port}", timeout=10)
        # An offset past `to`: the store refuses the batch (400) and logs why.
        with pytest.raises(StoreUnavailableError, match="HTTP 400") as refused:
            client.send("s1", 1, [{"off": 5, "record": {}}])
        client.close()

        def lines() -> list[dict[str, object]]:
            return [json.loads(line) for line in log_file.read_text().splitlines()]

        wait_for(lambda: any(line.get("status") == 400 for line in lines()), "the refusal")
    finally:
        store.kill()
    started, refusal = lines()
    assert started["msg"].startswith("Log store listened on 127.0.0.1:")  # type: ignore[union-attr]
    assert started["tenant"] == "acme"
    assert refusal["requestId"] == refused.value.request_id
    assert refusal["path"] == "/v1/ingest"
