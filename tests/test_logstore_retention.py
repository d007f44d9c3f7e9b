"""Retention with an injected clock: the last `retentionDays` UTC days, today included."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from swg_logstore.batch import Batch
from swg_logstore.formats import LogType
from swg_logstore.records import Record
from swg_logstore.retention import (
    closable_days,
    expired_days,
    first_retained_day,
    is_retained,
    local_day,
)
from swg_logstore.store import LogStore, StoreConfig

START = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def _record(day: date, n: int, log_type: str = "access") -> Record:
    return {
        "ts": f"{day.isoformat()}T10:00:{n % 60:02d}.000Z",
        "type": log_type,
        "id": f"r{day.isoformat()}-{n}:{log_type}",
        "requestId": f"r{day.isoformat()}-{n}",
        "url": f"http://example.test/{n}",
    }


def _store(root: Path, retention_days: int) -> LogStore:
    return LogStore(
        StoreConfig(root=root, tenant="acme", service_code="SWG-1", retention_days=retention_days)
    )


@given(
    today=st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 1, 1)),
    days=st.integers(min_value=1, max_value=90),
    offset=st.integers(min_value=-200, max_value=200),
)
def test_window_is_exactly_retention_days_ending_today(today: date, days: int, offset: int) -> None:
    day = today + timedelta(days=offset)
    assert is_retained(day, today=today, retention_days=days) == (
        -(days - 1) <= offset or offset > 0
    )
    window = [today - timedelta(days=i) for i in range(days)]
    assert all(is_retained(d, today=today, retention_days=days) for d in window)
    assert first_retained_day(today=today, retention_days=days) == window[-1]


def test_ninety_days_today_included() -> None:
    today = date(2026, 11, 26)
    assert first_retained_day(today=today, retention_days=90) == date(2026, 8, 29)
    days = [today - timedelta(days=i) for i in range(120)]
    assert expired_days(days, today=today, retention_days=90) == sorted(days[90:])


@pytest.mark.parametrize("bad", [0, 91, -1])
def test_retention_days_bounds(bad: int) -> None:
    with pytest.raises(ValueError, match="outside"):
        first_retained_day(today=date(2026, 1, 1), retention_days=bad)


def test_utc_day_needs_an_aware_clock() -> None:
    tokyo_morning = datetime(2026, 11, 27, 8, 0, tzinfo=UTC) - timedelta(hours=9)
    assert local_day(tokyo_morning) == date(2026, 11, 26)
    with pytest.raises(ValueError, match="aware"):
        local_day(datetime(2026, 1, 1))


def test_days_close_after_the_grace_period() -> None:
    days = [date(2026, 11, 25), date(2026, 11, 26)]
    just_after_midnight = datetime(2026, 11, 26, 0, 5, tzinfo=UTC)
    assert closable_days(days, now=just_after_midnight, grace=timedelta(minutes=10)) == []
    later = datetime(2026, 11, 26, 0, 15, tzinfo=UTC)
    assert closable_days(days, now=later, grace=timedelta(minutes=10)) == [date(2026, 11, 25)]


def test_simulated_91_days_keep_exactly_the_window(tmp_path: Path) -> None:
    """Every simulated day: records arrive (one late record for yesterday too), the store's
    maintenance runs with the injected clock, and the days on disk are exactly the window."""
    store = _store(tmp_path, 90)
    seen: list[date] = []
    for n in range(91):
        now = START + timedelta(days=n)
        today = local_day(now)
        batch_records = [(i + 1, _record(today, i)) for i in range(3)]
        if n:
            batch_records.append((4, _record(today - timedelta(days=1), 99)))
        store.ingest(Batch(stream=f"s{n}", to=4, records=batch_records), now=now)
        store.maintain(now=now)
        seen.append(today)
        expected = [d for d in seen if d >= today - timedelta(days=89)]
        assert store.days(LogType.ACCESS) == expected, f"day {n}"
    assert len(store.days(LogType.ACCESS)) == 90
    assert store.days(LogType.ACCESS)[0] == START.date() + timedelta(days=1)
    # every kept day before today is compressed, today is still open
    for day in store.days(LogType.ACCESS)[:-1]:
        names = sorted(p.name for p in (tmp_path / "access" / day.isoformat()).iterdir())
        assert names == ["000001.jsonl.gz", "000002.jsonl.gz"] or names == ["000001.jsonl.gz"]
    snapshot = store.snapshot(LogType.ACCESS, date(2000, 1, 1), date(2100, 1, 1))
    try:
        assert sum(1 for _ in snapshot) == 90
    finally:
        for snap in snapshot:
            snap.close()


def _fingerprint(root: Path) -> dict[str, tuple[int, int, int]]:
    out = {}
    for path in sorted((root / "access").rglob("*")):
        if path.is_file():
            info = os.stat(path)
            out[str(path.relative_to(root))] = (info.st_ino, info.st_size, info.st_mtime_ns)
    return out


def test_changing_retention_days_touches_nothing_inside_the_window(tmp_path: Path) -> None:
    now = START + timedelta(days=100)
    today = local_day(now)
    store = _store(tmp_path, 90)
    for n in range(90):
        day = today - timedelta(days=n)
        store.ingest(Batch(stream=f"s{n}", to=1, records=[(1, _record(day, n))]), now=now)
    store.maintain(now=now)
    before = _fingerprint(tmp_path)
    assert len(store.days(LogType.ACCESS)) == 90

    shorter = _store(tmp_path, 30)  # the operator rolled the store with retentionDays: 30
    shorter.maintain(now=now)
    kept = shorter.days(LogType.ACCESS)
    assert kept == [today - timedelta(days=n) for n in reversed(range(30))]
    after = _fingerprint(tmp_path)
    assert after == {k: v for k, v in before.items() if any(d.isoformat() in k for d in kept)}

    longer = _store(tmp_path, 60)  # a longer window keeps what is there, brings nothing back
    longer.maintain(now=now)
    assert longer.days(LogType.ACCESS) == kept
    assert _fingerprint(tmp_path) == after


def test_records_older_than_the_window_are_not_stored(tmp_path: Path) -> None:
    now = START + timedelta(days=200)
    store = _store(tmp_path, 7)
    old = local_day(now) - timedelta(days=7)
    result = store.ingest(
        Batch(stream="s", to=2, records=[(1, _record(old, 1)), (2, _record(local_day(now), 2))]),
        now=now,
    )
    assert (result.stored, result.expired, result.acked) == (1, 1, 2)
    assert store.days(LogType.ACCESS) == [local_day(now)]
