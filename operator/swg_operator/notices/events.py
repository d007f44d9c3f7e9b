"""The notices the operator records, one constructor per event, each with the key that makes
the same event one notice however often it is recorded (a retried reconcile, a restart).

Pure: the caller passes the time (`store.notice_time`: the API server's clock when it answers).
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping, Sequence

from swg_operator.notices.model import MAX_LINE, MAX_LINES, Notice, NoticeKind, format_time


def _lines(lines: Sequence[str]) -> tuple[str, ...]:
    """Lines as a notice takes them: one line each (breaks become spaces), cut to fit."""
    out = [" ".join(str(line).split())[:MAX_LINE] for line in lines]
    if len(out) > MAX_LINES:
        out = [*out[: MAX_LINES - 1], f"... and {len(out) - MAX_LINES + 1} more"]
    return tuple(out)


def change(
    tenant: str,
    *,
    service_code: str,
    generation: int,
    changes: Sequence[str],
    at: datetime.datetime,
) -> Notice:
    """The spec of generation `generation` is applied; `changes`: what changed, for people."""
    return Notice(
        kind=NoticeKind.CHANGE,
        tenant=tenant,
        service_code=service_code,
        time=format_time(at),
        subject=f"Your gateway's settings changed (generation {generation})",
        body=_lines(changes or ["The settings were applied."]),
        key=f"generation-{generation}",
    )


def maintenance(
    tenant: str, *, service_code: str, from_version: str, to_version: str, at: datetime.datetime
) -> Notice:
    """A new operator version applied the tenant's objects."""
    return Notice(
        kind=NoticeKind.MAINTENANCE,
        tenant=tenant,
        service_code=service_code,
        time=format_time(at),
        subject=f"Maintenance: operator upgraded from {from_version} to {to_version}",
        body=("Your gateway's components were updated by the new operator version.",),
        key=f"upgrade-{from_version}-{to_version}",
    )


def incident(
    tenant: str,
    *,
    service_code: str,
    since: str,
    reason: str,
    message: str,
    at: datetime.datetime,
) -> Notice:
    """The tenant left Ready at `since` (the Ready condition's lastTransitionTime)."""
    return Notice(
        kind=NoticeKind.INCIDENT,
        tenant=tenant,
        service_code=service_code,
        time=format_time(at),
        subject=f"Incident: your gateway is not ready ({reason})",
        body=_lines([f"Since {since}: {message}"]),
        key=f"not-ready-{since}",
    )


def recovered(tenant: str, *, service_code: str, since: str, at: datetime.datetime) -> Notice:
    """The tenant is Ready again at `since`, after an incident."""
    return Notice(
        kind=NoticeKind.INCIDENT,
        tenant=tenant,
        service_code=service_code,
        time=format_time(at),
        subject="Resolved: your gateway is ready again",
        body=(f"Ready since {since}.",),
        key=f"ready-{since}",
    )


def cancellation(
    tenant: str,
    *,
    service_code: str,
    cancelled_at: str,
    purge_at: str,
    legal_hold: bool,
    at: datetime.datetime,
) -> Notice:
    hold = ["A legal hold postpones the purge until it is lifted."] if legal_hold else []
    return Notice(
        kind=NoticeKind.CANCELLATION,
        tenant=tenant,
        service_code=service_code,
        time=format_time(at),
        subject=f"Cancelled: traffic stopped, data purged at {purge_at}",
        body=_lines(
            [
                f"Cancelled at {cancelled_at}: the proxy no longer serves traffic.",
                f"Your logs can be exported (kubectl swg logs {tenant}) until {purge_at}.",
                *hold,
            ]
        ),
        key=f"cancelled-{cancelled_at}",
    )


def purge(
    tenant: str,
    *,
    service_code: str,
    receipt_name: str,
    receipt: Mapping[str, str],
    at: datetime.datetime,
) -> Notice:
    """The purge completed; the signed receipt goes with the mail as `<receipt_name>.json`
    (`swg-operator receipt verify` checks it)."""
    return Notice(
        kind=NoticeKind.PURGE,
        tenant=tenant,
        service_code=service_code,
        time=format_time(at),
        subject=f"Purged: every object and the logs of {tenant} are deleted",
        body=_lines(
            [
                f"Completed at {receipt.get('completedAt', '?')}: deleted "
                f"{receipt.get('deleted', '?')}.",
                f"The signed receipt {receipt_name} is attached; check it with: "
                f"swg-operator receipt verify {receipt_name}.json --public-key KEY.pem",
                f"Signed with key {receipt.get('signature.keyId', '(unsigned)')}.",
            ]
        ),
        key=f"purged-{receipt.get('tenantUID', receipt_name)}",
        attachments=((f"{receipt_name}.json", json.dumps(dict(receipt), indent=1)),),
    )
