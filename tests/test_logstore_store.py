"""The log store: exactly-once ingestion, crash recovery, compression, downloads over HTTP."""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import tarfile
import tempfile
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from swg_logstore import layout
from swg_logstore.batch import Batch, BatchError
from swg_logstore.durable import write_json_atomic
from swg_logstore.export import ndjson_chunks, tar_chunks
from swg_logstore.formats import LogType
from swg_logstore.records import Record
from swg_logstore.server import download_app, ingest_app
from swg_logstore.store import LogStore, StoreConfig

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
TODAY = NOW.date()


def _record(day: date, n: int, log_type: str = "access") -> Record:
    return {
        "ts": f"{day.isoformat()}T10:{n // 60 % 60:02d}:{n % 60:02d}.123Z",
        "type": log_type,
        "id": f"{day.isoformat()}-{n}:{log_type}",
        "requestId": f"{day.isoformat()}-{n}",
        "url": f"http://example.test/{n}",
        "status": 200,
    }


def _store(root: Path, retention_days: int = 90) -> LogStore:
    return LogStore(
        StoreConfig(root=root, tenant="acme", service_code="SWG-1", retention_days=retention_days)
    )


def _batch(stream: str, start: int, count: int, day: date = TODAY) -> Batch:
    """Lines of 10 bytes each: record n ends at offset 10 * n."""
    records = [(10 * n, _record(day, n)) for n in range(start, start + count)]
    return Batch(stream=stream, to=10 * (start + count - 1), records=records)


def _all(store: LogStore, log_type: LogType = LogType.ACCESS) -> list[dict[str, Any]]:
    snapshot = store.snapshot(log_type, date(2000, 1, 1), date(2100, 1, 1))
    try:
        data = b"".join(ndjson_chunks(snapshot))
    finally:
        for snap in snapshot:
            snap.close()
    return [json.loads(line) for line in data.splitlines()]


# --- exactly once -----------------------------------------------------------------------------


def test_resent_and_overlapping_batches_store_each_record_once(tmp_path: Path) -> None:
    store = _store(tmp_path)
    first = store.ingest(_batch("s", 1, 5), now=NOW)
    assert (first.acked, first.stored) == (50, 5)
    again = store.ingest(_batch("s", 1, 5), now=NOW)
    assert (again.stored, again.duplicates, again.acked) == (0, 5, 50)
    overlap = store.ingest(_batch("s", 3, 6), now=NOW)  # records 3..8, 3..5 already stored
    assert (overlap.stored, overlap.duplicates, overlap.acked) == (3, 3, 80)
    other = store.ingest(_batch("t", 1, 5), now=NOW)  # another stream: its own offsets
    assert other.stored == 5
    urls = [r["url"] for r in _all(store)]
    assert urls == [f"http://example.test/{n}" for n in [*range(1, 9), *range(1, 6)]]
    assert _store(tmp_path).acked("s") == 80  # survives a restart


def test_stored_records_carry_the_store_tenant(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.ingest(_batch("s", 1, 1), now=NOW)
    (record,) = _all(store)
    assert list(record)[:6] == ["ts", "type", "id", "requestId", "tenant", "serviceCode"]
    assert (record["tenant"], record["serviceCode"]) == ("acme", "SWG-1")


def test_a_batch_without_records_still_moves_the_offset(tmp_path: Path) -> None:
    store = _store(tmp_path)
    assert store.ingest(Batch(stream="s", to=123, records=[]), now=NOW).acked == 123
    assert _store(tmp_path).acked("s") == 123


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "JSON object"),
        ({"stream": "a b", "to": 1}, "stream"),
        ({"stream": "s", "to": -1}, "to"),
        ({"stream": "s", "to": 5, "records": [{"off": 9, "record": {}}]}, "pass"),
        ({"stream": "s", "to": 9, "records": [{"off": 2, "record": {"type": "x"}}]}, "record"),
    ],
)
def test_bad_batches_are_refused(body: object, message: str) -> None:
    with pytest.raises(BatchError, match=message):
        Batch.from_json(body)


# --- crash recovery ---------------------------------------------------------------------------


def test_a_batch_cut_by_a_crash_is_undone_on_restart(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.ingest(_batch("s", 1, 3), now=NOW)
    segment = layout.segment_path(
        layout.day_dir(tmp_path, LogType.ACCESS, TODAY), 1, layout.SegmentState.OPEN
    )
    size = segment.stat().st_size
    # What a crash leaves between appending a batch and committing its offset:
    write_json_atomic(
        tmp_path / "state" / "intent.json",
        {"stream": "s", "to": 60, "files": {str(segment): size}},
    )
    with segment.open("ab") as out:
        out.write(b'{"ts":"2026-11-26T10:00:04.123Z","type":"access","half":')
    restarted = _store(tmp_path)
    assert segment.stat().st_size == size
    assert not (tmp_path / "state" / "intent.json").exists()
    assert restarted.counters.recovered_batches == 1
    assert restarted.ingest(_batch("s", 4, 3), now=NOW).stored == 3
    assert [r["url"][-1] for r in _all(restarted)] == ["1", "2", "3", "4", "5", "6"]


def test_a_committed_batch_is_kept_on_restart(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.ingest(_batch("s", 1, 3), now=NOW)
    segment = next((tmp_path / "access" / TODAY.isoformat()).iterdir())
    write_json_atomic(
        tmp_path / "state" / "intent.json", {"stream": "s", "to": 30, "files": {str(segment): 0}}
    )
    restarted = _store(tmp_path)  # streams.json already has 30: the batch is whole
    assert len(_all(restarted)) == 3


def test_a_new_segment_of_an_undone_batch_is_removed(tmp_path: Path) -> None:
    _store(tmp_path)
    directory = layout.day_dir(tmp_path, LogType.ACCESS, TODAY)
    directory.mkdir(parents=True)
    segment = layout.segment_path(directory, 1, layout.SegmentState.OPEN)
    segment.write_bytes(b"partial")
    write_json_atomic(
        tmp_path / "state" / "intent.json", {"stream": "s", "to": 10, "files": {str(segment): -1}}
    )
    _store(tmp_path)
    assert not segment.exists()


def test_interrupted_compression_is_resolved(tmp_path: Path) -> None:
    store = _store(tmp_path)
    yesterday = TODAY - timedelta(days=1)
    store.ingest(_batch("s", 1, 4, day=yesterday), now=NOW)
    directory = layout.day_dir(tmp_path, LogType.ACCESS, yesterday)
    raw = layout.segment_path(directory, 1, layout.SegmentState.OPEN)
    gz = layout.segment_path(directory, 1, layout.SegmentState.CLOSED)
    gz.write_bytes(gzip.compress(raw.read_bytes()))  # renamed into place, raw not yet removed
    (directory / "000002.jsonl.gz.tmp").write_bytes(b"half a gzip")
    restarted = _store(tmp_path)
    assert sorted(p.name for p in directory.iterdir()) == ["000001.jsonl.gz"]
    assert len(_all(restarted)) == 4


# --- compression and late records ---------------------------------------------------------------


def test_closed_days_are_compressed_and_late_records_open_a_new_segment(tmp_path: Path) -> None:
    store = _store(tmp_path)
    yesterday = TODAY - timedelta(days=1)
    store.ingest(_batch("s", 1, 100, day=yesterday), now=NOW)
    store.maintain(now=datetime.combine(TODAY, datetime.min.time(), UTC) + timedelta(minutes=5))
    directory = layout.day_dir(tmp_path, LogType.ACCESS, yesterday)
    assert sorted(p.name for p in directory.iterdir()) == ["000001.jsonl"]  # within the grace
    store.maintain(now=NOW)
    assert sorted(p.name for p in directory.iterdir()) == ["000001.jsonl.gz"]
    store.ingest(_batch("late", 101, 2, day=yesterday), now=NOW)
    assert sorted(p.name for p in directory.iterdir()) == ["000001.jsonl.gz", "000002.jsonl"]
    store.maintain(now=NOW)
    assert sorted(p.name for p in directory.iterdir()) == ["000001.jsonl.gz", "000002.jsonl.gz"]
    urls = [r["url"] for r in _all(store)]
    assert urls == [f"http://example.test/{n}" for n in range(1, 103)]


# --- HTTP -----------------------------------------------------------------------------------


def _serve(
    store: LogStore, test: Callable[[str, str], Awaitable[None]], *, now: datetime = NOW
) -> None:
    async def main() -> None:
        async with (
            TestServer(download_app(store, clock=lambda: now)) as http,
            TestServer(ingest_app(store, clock=lambda: now)) as ingest,
        ):
            await test(str(http.make_url("")), str(ingest.make_url("")))

    asyncio.run(main())


def _fill(store: LogStore, days: int) -> None:
    for n in range(days):
        day = TODAY - timedelta(days=n)
        store.ingest(_batch(f"s{n}", 1, 3, day=day), now=NOW)
        store.ingest(
            Batch(stream=f"a{n}", to=1, records=[(1, _record(day, 7, "antivirus"))]), now=NOW
        )
    store.maintain(now=NOW)


def test_ndjson_download_of_a_date_range(tmp_path: Path) -> None:
    store = _store(tmp_path)
    _fill(store, 5)

    async def check(http: str, _: str) -> None:
        async with ClientSession() as session:
            first, last = TODAY - timedelta(days=3), TODAY - timedelta(days=1)
            url = f"{http}/v1/logs?type=access&from={first}&to={last}"
            async with session.get(url) as response:
                assert response.status == 200
                assert response.headers["Content-Type"] == "application/x-ndjson"
                assert response.headers["X-SWG-Days"] == "3"
                body = await response.read()
            records = [json.loads(line) for line in body.splitlines()]
            days = sorted({r["ts"][:10] for r in records})
            assert days == [str(TODAY - timedelta(days=n)) for n in (3, 2, 1)]
            assert len(records) == 9
            assert {r["type"] for r in records} == {"access"}
            async with session.get(f"{http}/v1/logs?type=antivirus") as response:
                today_only = [json.loads(line) for line in (await response.read()).splitlines()]
            assert [r["ts"][:10] for r in today_only] == [str(TODAY)]

    _serve(store, check)


def test_tar_download_has_one_gzip_file_per_day(tmp_path: Path) -> None:
    store = _store(tmp_path)
    _fill(store, 3)

    async def check(http: str, _: str) -> None:
        async with ClientSession() as session:
            url = (
                f"{http}/v1/logs?type=access&from={TODAY - timedelta(days=2)}&to={TODAY}&format=tar"
            )
            async with session.get(url) as response:
                assert response.status == 200
                assert "attachment" in response.headers["Content-Disposition"]
                body = await response.read()
        with tarfile.open(fileobj=io.BytesIO(body)) as tar:
            names = tar.getnames()
            assert names == [
                f"access/access-{TODAY - timedelta(days=n)}.jsonl.gz" for n in (2, 1, 0)
            ]
            for member in tar.getmembers():
                data = tar.extractfile(member)
                assert data is not None
                lines = gzip.decompress(data.read()).splitlines()
                assert len(lines) == 3
                assert all(json.loads(line)["ts"][:10] in member.name for line in lines)

    _serve(store, check)


def test_days_health_metrics_and_bad_queries(tmp_path: Path) -> None:
    store = _store(tmp_path)
    _fill(store, 2)

    async def check(http: str, ingest: str) -> None:
        async with ClientSession() as session:
            async with session.get(f"{http}/v1/days?type=access") as response:
                days = (await response.json())["days"]
            assert [d["day"] for d in days] == [str(TODAY - timedelta(days=1)), str(TODAY)]
            assert [d["compressed"] for d in days] == [True, False]
            for base in (http, ingest):
                async with session.get(f"{base}/healthz") as response:
                    assert (await response.json()) == {"status": "ok", "tenant": "acme"}
            for base in (http, ingest):  # figures have a port of their own (metrics_app)
                async with session.get(f"{base}/metrics") as response:
                    assert response.status == 404
            for query in (
                "type=nope",
                "type=access&from=2026-13-01",
                "type=access&from=2026-11-27&to=2026-11-26",
                "type=access&format=zip",
            ):
                async with session.get(f"{http}/v1/logs?{query}") as response:
                    assert response.status == 400, query
            async with session.post(f"{http}/v1/ingest", json={}) as response:
                assert response.status in (404, 405)  # not on the download port
            async with session.get(f"{ingest}/v1/logs?type=access") as response:
                assert response.status == 404  # not on the ingest port

    _serve(store, check)


def test_ingest_over_http_acknowledges_the_offset(tmp_path: Path) -> None:
    store = _store(tmp_path)

    async def check(_: str, ingest: str) -> None:
        body = {
            "stream": "squid-access-1",
            "to": 20,
            "records": [
                {"off": 10, "record": _record(TODAY, 1)},
                {"off": 20, "record": _record(TODAY, 2)},
            ],
        }
        async with ClientSession() as session:
            for expected_stored in (2, 0):
                raw = gzip.compress(json.dumps(body).encode())
                headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
                async with session.post(
                    f"{ingest}/v1/ingest", data=raw, headers=headers
                ) as response:
                    assert response.status == 200
                    result = await response.json()
                assert (result["acked"], result["stored"]) == (20, expected_stored)
            async with session.post(f"{ingest}/v1/ingest", data=b"{") as response:
                assert response.status == 400
            async with session.post(f"{ingest}/v1/ingest", json={"stream": "x"}) as response:
                assert response.status == 400

    _serve(store, check)
    assert len(_all(store)) == 2


# --- bounded timestamps and unstaged downloads --------------------------------------------------


def test_future_dated_records_are_clamped_to_the_store_clock_and_expire(tmp_path: Path) -> None:
    store = _store(tmp_path, retention_days=2)
    future = _record(TODAY, 1) | {"ts": "2099-12-31T23:59:59.000Z"}
    near = _record(TODAY, 2) | {"ts": (NOW + timedelta(minutes=4)).strftime(TS_FORMAT)}
    store.ingest(Batch(stream="s", to=20, records=[(10, future), (20, near)]), now=NOW)
    assert store.days(LogType.ACCESS) == [TODAY]  # no day directory in 2099
    stored = {r["id"]: r for r in _all(store)}
    clamped = stored[future["id"]]
    assert clamped["ts"] == NOW.strftime(TS_FORMAT)
    assert clamped["tsReported"] == "2099-12-31T23:59:59.000Z"
    assert stored[near["id"]]["ts"] == near["ts"]  # within the allowed skew: as sent
    assert "tsReported" not in stored[near["id"]]
    assert store.counters.clamped == 1
    later = NOW + timedelta(days=3)
    store.maintain(now=later)
    assert store.days(LogType.ACCESS) == []  # it expires with the day it was stored in


TS_FORMAT = "%Y-%m-%dT%H:%M:%S.000Z"


def test_tar_download_is_streamed_without_a_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A day of logs is never staged (the log store's /tmp is small): compressed segments are
    copied as they are, open ones compressed on the fly."""
    store = _store(tmp_path)
    _fill(store, 2)  # yesterday compressed, today open
    store.ingest(_batch("late", 1, 2, day=TODAY), now=NOW)

    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("a download must not stage data in a temporary file")

    for name in ("SpooledTemporaryFile", "TemporaryFile", "NamedTemporaryFile", "mkstemp"):
        monkeypatch.setattr(tempfile, name, refuse)
    snapshots = store.snapshot(LogType.ACCESS, TODAY - timedelta(days=1), TODAY)
    try:
        assert any(p.compressed for p in snapshots[0].parts)
        assert not any(p.compressed for p in snapshots[1].parts)
        pieces = list(tar_chunks(snapshots))
    finally:
        for snap in snapshots:
            snap.close()
    assert max(len(p) for p in pieces) <= 1024 * 1024
    with tarfile.open(fileobj=io.BytesIO(b"".join(pieces))) as tar:
        members = tar.getmembers()
        assert [m.name for m in members] == [
            f"access/access-{TODAY - timedelta(days=1)}.jsonl.gz",
            f"access/access-{TODAY}.jsonl.gz",
        ]
        counts = []
        for member in members:
            data = tar.extractfile(member)
            assert data is not None
            counts.append(len(gzip.decompress(data.read()).splitlines()))
    assert counts == [3, 5]
