"""The log store's data-plane figures: the mapping of records to samples, and /metrics as
Prometheus reads it after real ingestion."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiohttp import ClientSession
from aiohttp.test_utils import TestServer
from prometheus_client.parser import text_string_to_metric_families

from swg_logstore.batch import Batch
from swg_logstore.metrics import Sample, samples
from swg_logstore.records import Record
from swg_logstore.server import attach_metrics, metrics_app
from swg_logstore.store import LogStore, StoreConfig

NOW = datetime(2026, 11, 26, 16, 3, 5, tzinfo=UTC)
TS = "2026-11-26T16:03:01.201Z"  # 3.799 s before NOW


def _access(**extra: object) -> Record:
    base: Record = {
        "ts": TS, "type": "access", "id": "r1:access", "requestId": "r1", "clientIp": "127.0.0.1",
        "method": "GET", "url": "http://a.test/", "host": "a.test", "status": 200,
        "bytesOut": 804, "bytesIn": 136, "durationMs": 42, "decision": "allow",
        "category": None, "list": "default", "policy": "tenant", "av": "clean",
    }  # fmt: skip
    return base | extra  # type: ignore[operator]


def test_an_allowed_request_counts_request_decision_bytes_and_latency() -> None:
    assert samples(_access()) == [
        Sample("requests", (("decision", "allow"),)),
        Sample("decisions", (("decision", "allow"), ("category", "none"), ("list", "default"))),
        Sample("bytes", (("direction", "out"),), 804.0),
        Sample("bytes", (("direction", "in"),), 136.0),
        Sample("latency", (), 0.042),
    ]


def test_a_category_block_names_category_and_list() -> None:
    got = samples(_access(decision="block", category="gambling", list="category", bytesIn=0))
    assert Sample("requests", (("decision", "block"),)) in got
    assert (
        Sample("decisions", (("decision", "block"), ("category", "gambling"), ("list", "category")))
        in got
    )
    assert [s for s in got if s.metric == "bytes"] == [
        Sample("bytes", (("direction", "out"),), 804)
    ]


def test_scanner_and_sandbox_errors_and_verdicts() -> None:
    assert Sample("scanner_errors", (("source", "proxy"),)) in samples(_access(av="error"))
    av: Record = {"ts": TS, "type": "antivirus", "direction": "download", "verdict": "infected"}
    assert samples(av) == [Sample("av", (("direction", "download"), ("verdict", "infected")))]
    assert Sample("scanner_errors", (("source", "scanner"),)) in samples(av | {"verdict": "error"})
    box: Record = {"ts": TS, "type": "sandbox", "direction": "upload", "verdict": "error"}
    assert samples(box) == [
        Sample("sandbox", (("direction", "upload"), ("verdict", "error"))),
        Sample("sandbox_errors", ()),
    ]


def test_odd_values_count_nothing_wrong() -> None:
    got = samples(_access(bytesOut=True, bytesIn=-3, durationMs="slow", decision=None))
    assert [s.metric for s in got] == ["requests", "decisions"]
    assert got[0].labels == (("decision", "none"),)
    assert samples({"type": "urlfilter", "decision": "block"}) == []  # access counts it once


def _values(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{labels}}}"] = s.value
    return out


def test_metrics_endpoint_counts_each_stored_record_once(tmp_path: Path) -> None:
    store = LogStore(
        StoreConfig(root=tmp_path, tenant="acme", service_code="SWG-1", retention_days=30)
    )
    figures = attach_metrics(store)
    blocked = _access(id="r2:access", requestId="r2", decision="block", category="gambling",
                      list="category")  # fmt: skip
    av: Record = {"ts": TS, "type": "antivirus", "id": "r3:antivirus:download",
                  "requestId": "r3", "direction": "download", "verdict": "infected"}  # fmt: skip
    batch = Batch(stream="s", to=3, records=[(1, _access()), (2, blocked), (3, av)])
    store.ingest(batch, now=NOW)
    store.ingest(batch, now=NOW + timedelta(seconds=1))  # a resend: duplicates count nothing

    async def main() -> str:
        async with TestServer(metrics_app(store, figures)) as server, ClientSession() as session:
            response = await session.get(str(server.make_url("/metrics")))
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/plain")
            return await response.text()

    got = _values(asyncio.run(main()))
    assert got["swg_dataplane_requests_total{decision=allow,tenant=acme}"] == 1
    assert got["swg_dataplane_requests_total{decision=block,tenant=acme}"] == 1
    key = (
        "swg_dataplane_decisions_total{category=gambling,decision=block,list=category,tenant=acme}"
    )
    assert got[key] == 1
    verdict = (
        "swg_dataplane_antivirus_verdicts_total{direction=download,tenant=acme,verdict=infected}"
    )
    assert got[verdict] == 1
    assert got["swg_dataplane_bytes_total{direction=out,tenant=acme}"] == 2 * 804
    assert got["swg_dataplane_request_duration_seconds_count{tenant=acme}"] == 2
    assert got["swg_logstore_ingest_lag_seconds_count{tenant=acme}"] == 3
    assert got["swg_logstore_ingest_lag_seconds_bucket{le=5.0,tenant=acme}"] == 3
    assert got["swg_logstore_ingest_lag_seconds_bucket{le=2.0,tenant=acme}"] == 0
    assert got["swg_logstore_stored_total{tenant=acme}"] == 3
    assert got["swg_logstore_duplicates_total{tenant=acme}"] == 3
    assert got["swg_logstore_disk_bytes{tenant=acme,type=access}"] > 0
    assert got["swg_logstore_disk_bytes{tenant=acme,type=sandbox}"] == 0
    assert got["swg_logstore_volume_free_bytes{tenant=acme}"] > 0
