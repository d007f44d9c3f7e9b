"""The customer's days: the log store cuts days at local midnight of spec.logs.timeZone, so
"today" and "90 days including today" are the customer's days (23 or 25 hours long across a
daylight saving change), and downloads take local dates."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from swg_logstore.batch import Batch
from swg_logstore.formats import LogType
from swg_logstore.records import Record, record_day
from swg_logstore.retention import closable_days, load_zone, local_day
from swg_logstore.server import download_app
from swg_logstore.store import LogStore, StoreConfig
from swg_operator.api import parse_spec

TOKYO = ZoneInfo("Asia/Tokyo")
NEW_YORK = ZoneInfo("America/New_York")


def _at(ts: str, n: int = 0) -> Record:
    return {
        "ts": ts,
        "type": "access",
        "id": f"r{n}:access",
        "requestId": f"r{n}",
        "url": f"http://example.test/{n}",
    }


def _store(root: Path, zone: str, retention_days: int = 90) -> LogStore:
    return LogStore(
        StoreConfig(
            root=root,
            tenant="acme",
            service_code="SWG-1",
            retention_days=retention_days,
            time_zone=zone,
        )
    )


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.mark.parametrize(
    ("ts", "zone", "day"),
    [
        # Tokyo is UTC+9: its day starts at 15:00 UTC the day before.
        ("2026-11-25T14:59:59.999Z", TOKYO, date(2026, 11, 25)),
        ("2026-11-25T15:00:00.000Z", TOKYO, date(2026, 11, 26)),
        # 2026-03-08 in New York lasts 23 hours: 05:00Z (EST) .. 04:00Z the next day (EDT).
        ("2026-03-08T04:59:59.999Z", NEW_YORK, date(2026, 3, 7)),
        ("2026-03-08T05:00:00.000Z", NEW_YORK, date(2026, 3, 8)),
        ("2026-03-09T03:59:59.999Z", NEW_YORK, date(2026, 3, 8)),
        ("2026-03-09T04:00:00.000Z", NEW_YORK, date(2026, 3, 9)),
        # 2026-11-01 lasts 25 hours: 04:00Z (EDT) .. 05:00Z the next day (EST).
        ("2026-11-01T03:59:59.999Z", NEW_YORK, date(2026, 10, 31)),
        ("2026-11-01T04:00:00.000Z", NEW_YORK, date(2026, 11, 1)),
        ("2026-11-02T04:59:59.999Z", NEW_YORK, date(2026, 11, 1)),
        ("2026-11-02T05:00:00.000Z", NEW_YORK, date(2026, 11, 2)),
        ("2026-11-25T23:00:00.000Z", UTC, date(2026, 11, 25)),
        # An explicit offset counts; a timestamp without one is taken as written.
        ("2026-11-25T23:30:00+09:00", TOKYO, date(2026, 11, 25)),
        ("2026-11-25T23:30:00", TOKYO, date(2026, 11, 25)),
    ],
)
def test_a_record_belongs_to_the_customers_day(ts: str, zone: ZoneInfo, day: date) -> None:
    assert record_day(_at(ts), zone) == day


@pytest.mark.parametrize(
    ("start", "hours"),
    [("2026-03-08", 23), ("2026-03-09", 24), ("2026-11-01", 25), ("2026-11-02", 24)],
)
def test_dst_days_last_23_or_25_hours(start: str, hours: int) -> None:
    """Every instant of the day's span lands in it, and nothing either side of it does."""
    day = date.fromisoformat(start)
    begin = datetime.combine(day, datetime.min.time(), NEW_YORK).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), NEW_YORK).astimezone(UTC)
    assert end - begin == timedelta(hours=hours)
    for moment in (begin, end - timedelta(milliseconds=1), begin + (end - begin) / 2):
        assert local_day(moment, NEW_YORK) == day
    assert local_day(begin - timedelta(milliseconds=1), NEW_YORK) == day - timedelta(days=1)
    assert local_day(end, NEW_YORK) == day + timedelta(days=1)


def test_tokyo_keeps_ninety_local_days_including_today(tmp_path: Path) -> None:
    """At 00:30 in Tokyo (15:30 UTC the day before) today is already the new local day; the
    oldest kept day starts at local midnight 89 days earlier, to the millisecond."""
    now = _utc("2026-11-25T15:30:00Z")  # 2026-11-26 00:30 in Tokyo
    store = _store(tmp_path, "Asia/Tokyo")
    assert store.today(now) == date(2026, 11, 26)
    first_kept = datetime(2026, 8, 29, tzinfo=TOKYO).astimezone(UTC)  # 2026-08-28T15:00Z
    records = [
        (1, _at("2026-08-28T14:59:59.999Z", 1)),  # 2026-08-28 23:59:59.999 in Tokyo: gone
        (2, _at("2026-08-28T15:00:00.000Z", 2)),  # 2026-08-29 00:00 in Tokyo: kept
        (3, _at("2026-11-25T15:10:00.000Z", 3)),  # today 00:10 in Tokyo (still 25th in UTC)
    ]
    assert first_kept == _utc("2026-08-28T15:00:00Z")
    result = store.ingest(Batch(stream="s", to=3, records=records), now=now)
    assert (result.stored, result.expired) == (2, 1)
    assert store.days(LogType.ACCESS) == [date(2026, 8, 29), date(2026, 11, 26)]

    # Nine hours later (still 2026-11-26 in Tokyo) nothing expires; at the next local midnight
    # (15:00 UTC), 2026-08-29 leaves the window.
    store.maintain(now=_utc("2026-11-26T14:59:59Z"))
    assert store.days(LogType.ACCESS) == [date(2026, 8, 29), date(2026, 11, 26)]
    store.maintain(now=_utc("2026-11-26T15:00:00Z"))
    assert store.days(LogType.ACCESS) == [date(2026, 11, 26)]


def test_a_day_closes_at_local_midnight_across_a_dst_change(tmp_path: Path) -> None:
    grace = timedelta(minutes=10)
    days = [date(2026, 3, 8)]
    spring_end = _utc("2026-03-09T04:00:00Z")  # New York midnight after the 23-hour day
    assert closable_days(days, now=spring_end + grace - timedelta(seconds=1), grace=grace,
                         zone=NEW_YORK) == []  # fmt: skip
    assert closable_days(days, now=spring_end + grace, grace=grace, zone=NEW_YORK) == days
    # In UTC the same day would already have closed at 00:10Z.
    assert closable_days(days, now=_utc("2026-03-09T00:10:00Z"), grace=grace) == days
    assert closable_days(days, now=_utc("2026-03-09T00:10:00Z"), grace=grace, zone=NEW_YORK) == []

    store = _store(tmp_path, "America/New_York")
    autumn = [
        (1, _at("2026-11-01T04:00:00.000Z", 1)),  # 00:00 EDT, first instant of the 25-hour day
        (2, _at("2026-11-01T05:30:00.000Z", 2)),  # 01:30 EDT
        (3, _at("2026-11-01T06:30:00.000Z", 3)),  # 01:30 EST, the repeated hour
        (4, _at("2026-11-02T04:59:59.999Z", 4)),  # 23:59:59.999 EST, its last instant
        (5, _at("2026-11-02T05:00:00.000Z", 5)),  # the next day
    ]
    now = _utc("2026-11-02T06:00:00Z")
    store.ingest(Batch(stream="s", to=5, records=autumn), now=now)
    assert store.days(LogType.ACCESS) == [date(2026, 11, 1), date(2026, 11, 2)]
    lines = b"".join(p.read_bytes() for p in sorted((tmp_path / "access/2026-11-01").iterdir()))
    assert [json.loads(line)["requestId"] for line in lines.splitlines()] == [
        "r1",
        "r2",
        "r3",
        "r4",
    ]


def test_downloads_take_local_dates_and_default_to_the_customers_today(tmp_path: Path) -> None:
    now = _utc("2026-11-25T16:00:00Z")  # 2026-11-26 01:00 in Tokyo
    store = _store(tmp_path, "Asia/Tokyo")
    records = [
        (1, _at("2026-11-25T14:00:00.000Z", 1)),  # 2026-11-25 23:00 in Tokyo
        (2, _at("2026-11-25T15:30:00.000Z", 2)),  # 2026-11-26 00:30 in Tokyo
    ]
    store.ingest(Batch(stream="s", to=2, records=records), now=now)

    async def main() -> None:
        app = download_app(store, clock=lambda: now)
        async with TestServer(app) as server, ClientSession() as session:
            async with session.get(server.make_url("/v1/logs?type=access")) as response:
                assert response.status == 200
                assert response.headers["X-SWG-Time-Zone"] == "Asia/Tokyo"
                today = [json.loads(x)["requestId"] for x in (await response.read()).splitlines()]
            url = server.make_url("/v1/logs?type=access&from=2026-11-25&to=2026-11-25")
            async with session.get(url) as response:
                yesterday = [
                    json.loads(x)["requestId"] for x in (await response.read()).splitlines()
                ]
        assert today == ["r2"]
        assert yesterday == ["r1"]

    asyncio.run(main())


def test_an_unknown_time_zone_is_refused_naming_the_field(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"spec\.logs\.timeZone.*'Mars/Olympus'"):
        load_zone("Mars/Olympus")
    with pytest.raises(ValueError, match=r"spec\.logs\.timeZone"):
        _store(tmp_path, "Mars/Olympus")
    spec = {"serviceCode": "SWG-1", "logs": {"timeZone": "Mars/Olympus"}}
    with pytest.raises(ValueError, match=r"(?s)logs\.timeZone.*Mars/Olympus"):
        parse_spec(spec)
    done = subprocess.run(
        [
            *(sys.executable, "-m", "swg_logstore", "serve", "--root", str(tmp_path)),
            *("--tenant", "acme", "--service-code", "SWG-1", "--time-zone", "Mars/Olympus"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "spec.logs.timeZone" in done.stderr


def test_zones_resolve_without_the_systems_zoneinfo() -> None:
    """The images are Debian slim: /usr/share/zoneinfo may be absent; the tzdata package
    carries the zones."""
    code = (
        "import zoneinfo; zoneinfo.reset_tzpath(to=[]);"
        "from datetime import datetime, UTC;"
        "from swg_logstore.retention import load_zone, local_day;"
        "print(local_day(datetime(2026, 11, 25, 15, tzinfo=UTC), load_zone('Asia/Tokyo')),"
        " local_day(datetime(2026, 3, 9, 3, tzinfo=UTC), load_zone('America/New_York')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.split() == ["2026-11-26", "2026-03-08"]
