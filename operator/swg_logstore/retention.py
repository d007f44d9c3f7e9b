"""Which days of logs a tenant keeps: the last `retentionDays` calendar days, today included.

Days are the tenant's calendar days (spec.logs.timeZone, UTC by default): a day starts at local
midnight and lasts 23, 24 or 25 hours across a daylight saving change. On day D with N
retention days the store holds D-(N-1) .. D and nothing older. Days after D (a node clock ahead
of the store's) are kept: they are not old. A change of N applies on the next sweep and never
touches a day that is still inside the window.

Pure: `today` (or `now`) is always an argument.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# The one place of the log retention limit (90 calendar days, today included): the operator's API
# (spec.logs.retentionDays), its sizing model and this store all use these.
MIN_RETENTION_DAYS: Final = 1
MAX_RETENTION_DAYS: Final = 90


def load_zone(name: str) -> tzinfo:
    """The IANA zone `name` (spec.logs.timeZone); ValueError naming the field when unknown."""
    if name == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise ValueError(f"spec.logs.timeZone: unknown IANA time zone {name!r}") from err


def local_day(now: datetime, zone: tzinfo = UTC) -> date:
    """The day of `now` (an aware datetime) in `zone`: the retention clock's day."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(zone).date()


def first_retained_day(*, today: date, retention_days: int) -> date:
    if not MIN_RETENTION_DAYS <= retention_days <= MAX_RETENTION_DAYS:
        raise ValueError(
            f"retention_days {retention_days} is outside {MIN_RETENTION_DAYS}..{MAX_RETENTION_DAYS}"
        )
    return today - timedelta(days=retention_days - 1)


def is_retained(day: date, *, today: date, retention_days: int) -> bool:
    return day >= first_retained_day(today=today, retention_days=retention_days)


def expired_days(days: Iterable[date], *, today: date, retention_days: int) -> list[date]:
    """The days among `days` to delete, oldest first."""
    first = first_retained_day(today=today, retention_days=retention_days)
    return sorted({day for day in days if day < first})


def closable_days(
    days: Iterable[date], *, now: datetime, grace: timedelta, zone: tzinfo = UTC
) -> list[date]:
    """Days whose files can be compressed: the day ended (local midnight in `zone`) at least
    `grace` ago (records of a day still arrive for a while after midnight: shippers catch up,
    pods drain)."""
    cutoff = local_day(now - grace, zone)
    return sorted({day for day in days if day < cutoff})
