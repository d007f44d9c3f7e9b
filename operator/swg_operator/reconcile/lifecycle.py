"""Cancellation deadline math. Pure: the clocks are passed in.

The deadline is computed from the API server's `deletionTimestamp` (the server's clock) and
stamped into status the first time the deletion is seen; a stamped deadline is kept (so a later
edit of `purgeAfterDays` cannot move it), but never beyond 90 days after the cancellation. Until it
is stamped, `purgeAfterDays` is the larger of the spec's as the operator last handled it before
the deletion (`status.purgeAfterDays`, written with every status and kept unchanged once the
tenant is being deleted; for a tenant whose status an earlier version wrote, kopf's last-handled
annotation) and the current spec's: an edit made after the deletion can lengthen the wait, never
shorten it. A kept value that cannot be read counts as 90 days.

The legal hold and `purgeAfterDays` are read from the raw object, not the validated spec: a spec
whose other fields fail validation still holds, and a value that cannot be read counts as the
safe one (held; 90 days).

When is the purge due? Two clock modes, chosen at operator start (docs/operator.md):

* ``server`` (default): due when the API server's clock, read from the Date header of a fresh
  response (truncated to the second, so never ahead of the server), has reached `purgeAt`. The
  deadline and the check use the same clock, so the operator's own clock being behind or ahead,
  by minutes or by months, can neither purge early nor late; it only decides when to look again.
* ``local``: due when the operator's clock has passed `purgeAt` plus a safety margin (default
  10 minutes, larger than any sane NTP error). An explicit, logged opt-in for clusters whose API
  server time cannot be read and for the shifted-clock test (faketime); every purge receipt
  records which mode decided it.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from swg_operator.api import CancellationStatus
from swg_operator.api.spec import MAX_PURGE_DAYS
from swg_operator.render import Lifecycle, effective_lifecycle

UTC: Final = datetime.UTC
# kopf's diff-base as earlier versions kept it: the object as the operator last handled it.
# Read only for a tenant whose status has no `purgeAfterDays` yet; no longer written.
LAST_HANDLED_ANNOTATION: Final = "swg.dev/last-handled-configuration"


def legal_hold(spec: Any) -> bool:
    """`spec.cancellation.legalHold` of a raw spec: True when set, and when it cannot be read
    (a spec or cancellation that is not an object, a hold that is not a boolean)."""
    if spec is None:
        return False
    if not isinstance(spec, Mapping):
        return True
    cancellation = spec.get("cancellation")
    if cancellation is None:
        return False
    if not isinstance(cancellation, Mapping):
        return True
    hold = cancellation.get("legalHold")
    return hold is not None and hold is not False


def _days(spec: Any) -> int:
    """`spec.cancellation.purgeAfterDays` of a raw spec: the default 90 when absent, and 90
    (the longest) when it cannot be read."""
    if not isinstance(spec, Mapping):
        return MAX_PURGE_DAYS
    cancellation = spec.get("cancellation")
    if not isinstance(cancellation, Mapping):  # absent: the default; unreadable: the longest
        return MAX_PURGE_DAYS
    return _readable_days(cancellation.get("purgeAfterDays", MAX_PURGE_DAYS))


def _readable_days(days: Any) -> int:
    """`days` when it is a number of days from 0 to 90, else 90 (the longest)."""
    if isinstance(days, bool) or not isinstance(days, int) or not 0 <= days <= MAX_PURGE_DAYS:
        return MAX_PURGE_DAYS
    return days


def last_handled_spec(body: Mapping[str, Any]) -> Any:
    """The spec as kopf last handled it (its diff-base annotation), or None when there is
    none; an annotation that cannot be read gives an empty object (so: 90 days)."""
    annotations = (body.get("metadata") or {}).get("annotations") or {}
    raw = annotations.get(LAST_HANDLED_ANNOTATION)
    if raw is None:
        return None
    try:
        essence = json.loads(raw)
    except ValueError:
        return {}
    return essence.get("spec", {}) if isinstance(essence, Mapping) else {}


def _kept_days(body: Mapping[str, Any]) -> int | None:
    """`status.purgeAfterDays` (90 when it cannot be read), or None when there is none."""
    status = body.get("status")
    if not isinstance(status, Mapping) or status.get("purgeAfterDays") is None:
        return None
    return _readable_days(status["purgeAfterDays"])


def handled_purge_days(body: Mapping[str, Any]) -> int | None:
    """`status.purgeAfterDays` for the status written now: the spec's while the tenant is not
    being deleted; once it is, the ones kept (None when there are none)."""
    if (body.get("metadata") or {}).get("deletionTimestamp"):
        return _kept_days(body)
    return _days(body.get("spec") or {})


def purge_after_days(body: Mapping[str, Any]) -> int:
    """The days from cancellation to purge for a tenant being deleted: those of the spec as
    last handled before the deletion, or of the current spec when they are more."""
    current = _days(body.get("spec") or {})
    handled = _kept_days(body)
    if handled is None:
        spec = last_handled_spec(body)
        handled = None if spec is None else _days(spec)
    return current if handled is None else max(handled, current)


class ClockMode(StrEnum):
    SERVER = "server"
    LOCAL = "local"


def parse_time(text: str) -> datetime.datetime:
    """An RFC 3339 timestamp as the API server writes it (`2025-01-02T03:04:05Z`), as UTC."""
    value = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def format_time(value: datetime.datetime) -> str:
    """RFC 3339 UTC, to the second (the API server's own precision)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Deadline:
    cancelled_at: datetime.datetime
    purge_at: datetime.datetime


def purge_deadline(
    *, deletion_timestamp: str, purge_after_days: int, stamped_purge_at: str | None = None
) -> Deadline:
    """`cancelledAt` = the deletion timestamp; `purgeAt` = the stamped value when there is one,
    else cancelledAt + purgeAfterDays; never later than 90 days after the cancellation."""
    cancelled_at = parse_time(deletion_timestamp)
    latest = cancelled_at + datetime.timedelta(days=MAX_PURGE_DAYS)
    if stamped_purge_at:
        purge_at = parse_time(stamped_purge_at)
    else:
        days = max(0, min(purge_after_days, MAX_PURGE_DAYS))
        purge_at = cancelled_at + datetime.timedelta(days=days)
    return Deadline(cancelled_at=cancelled_at, purge_at=min(purge_at, latest))


def tenant_lifecycle(body: Mapping[str, Any]) -> Lifecycle:
    """Cancelled once the tenant is being deleted, else as its spec says (`suspended`, read
    raw: a spec that fails validation is still suspended)."""
    if (body.get("metadata") or {}).get("deletionTimestamp"):
        return Lifecycle.CANCELLED
    spec = body.get("spec")
    suspended = isinstance(spec, Mapping) and bool(spec.get("suspended"))
    return effective_lifecycle(Lifecycle.ACTIVE, suspended=suspended)


def cancellation(
    body: Mapping[str, Any], stamped: CancellationStatus | None
) -> tuple[Deadline, CancellationStatus]:
    """The purge deadline of a tenant being deleted and its status: what is `stamped` in its
    status is kept (see the module docstring); raw reads, so an invalid spec still holds."""
    deadline = purge_deadline(
        deletion_timestamp=body["metadata"]["deletionTimestamp"],
        purge_after_days=purge_after_days(body),
        stamped_purge_at=stamped.purge_at if stamped is not None else None,
    )
    status = CancellationStatus(
        cancelled_at=format_time(deadline.cancelled_at),
        purge_at=format_time(deadline.purge_at),
        legal_hold=legal_hold(body.get("spec")),
        purged_at=stamped.purged_at if stamped is not None else None,
        receipt=stamped.receipt if stamped is not None else None,
    )
    return deadline, status


@dataclass(frozen=True)
class DueCheck:
    due: bool
    wait_seconds: float  # when to look again if not due
    reason: str  # CamelCase, for logs and status
    skew_seconds: float | None  # local minus server clock, when the server's was read


def check_due(
    deadline: Deadline,
    *,
    local_now: datetime.datetime,
    server_now: datetime.datetime | None,
    mode: ClockMode = ClockMode.SERVER,
    local_margin: datetime.timedelta = datetime.timedelta(minutes=10),
    legal_hold: bool = False,
    max_wait: float = 3600.0,
) -> DueCheck:
    """Is the purge due now? If not, how long to wait before asking again (at most
    `max_wait`, so a lifted legal hold or a corrected clock is noticed in time)."""
    skew = None if server_now is None else (local_now - server_now).total_seconds()
    if legal_hold:
        return DueCheck(False, max_wait, "LegalHold", skew)
    if mode is ClockMode.SERVER:
        if server_now is None:
            return DueCheck(False, min(60.0, max_wait), "ServerTimeUnknown", skew)
        remaining = (deadline.purge_at - server_now).total_seconds()
        if remaining <= 0:
            return DueCheck(True, 0.0, "DeadlineReached", skew)
        # +1 s: the Date header is truncated to the second.
        return DueCheck(False, min(remaining + 1.0, max_wait), "WaitingForDeadline", skew)
    remaining = (deadline.purge_at + local_margin - local_now).total_seconds()
    if remaining <= 0:
        return DueCheck(True, 0.0, "DeadlineReachedLocalClock", skew)
    return DueCheck(False, min(remaining, max_wait), "WaitingForDeadline", skew)
