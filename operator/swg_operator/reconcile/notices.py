"""The reconcile's and the purge's notices to the tenant's admins (`swg_operator.notices`).

Recorded in the tenant namespace's notice history with a pending mail to each of
`spec.contacts`; the operator's outbox (`notices.Dispatcher`, on the leader) sends them:

* change: the spec of a new generation is applied (key `generation-N`);
* maintenance: the first reconcile of a tenant by an operator version other than the one that
  last reconciled it (the version is kept as an annotation of the notices ConfigMap; checked
  once per tenant and process, so a reconcile of an unchanged tenant asks nothing more);
* incident: the tenant left Ready; recovered: Ready again after a recorded incident;
* cancellation: asked on every pass of the cancellation until the purge, recorded once (once
  per process it is looked for; a stored one is not written again);
* purge: into the operator namespace's box (`purged-notices-<tenant>`), before the finalizer
  goes, with the signed receipt attached.

Every notice is recorded before the status that shows its cause is written: a failure to record
leaves the status unwritten, so the retried reconcile sees the same transition and records it
then (the notice id derives from the event, so a retry never records it twice).
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, Final

from swg_operator.api import CancellationStatus, SecureWebGatewaySpec, SecureWebGatewayStatus
from swg_operator.kube import KubeApiError
from swg_operator.kube.kinds import CONFIG_MAP
from swg_operator.notices import (
    Box,
    Entry,
    History,
    MailState,
    Notice,
    events,
    purged_box,
    read,
    record,
    tenant_box,
)
from swg_operator.notices.model import decode, format_time, parse_time
from swg_operator.notices.store import UNKNOWN, Unknown, notice_time, record_all, update
from swg_operator.reconcile.context import Context, guard
from swg_operator.reconcile.plan import Plan
from swg_operator.reconcile.status import never_ready, summarise

logger = logging.getLogger("swg_operator.notices")

VERSION_ANNOTATION: Final = "swg.dev/operator-version"


def contacts_of(body: Mapping[str, Any], spec: SecureWebGatewaySpec | None) -> tuple[str, ...]:
    """`spec.contacts` (as validated when the spec parsed; else the e-mail-looking strings)."""
    if spec is not None:
        return tuple(str(c) for c in spec.contacts)
    raw = (body.get("spec") or {}).get("contacts") or ()
    return tuple(str(c) for c in raw if isinstance(c, str) and "@" in c)[:16]


def service_code_of(body: Mapping[str, Any]) -> str:
    raw = (body.get("spec") or {}).get("serviceCode")
    return raw if isinstance(raw, str) else ""


def _ready(status: SecureWebGatewayStatus | None) -> tuple[str, str, str, str] | None:
    """The Ready condition as (status, reason, message, lastTransitionTime)."""
    for condition in status.conditions if status is not None else ():
        if condition.type == "Ready":
            return (
                condition.status,
                condition.reason,
                condition.message,
                condition.last_transition_time,
            )
    return None


def change_lines(plan: Plan) -> list[str]:
    lines = [
        f"{verb} {len(keys)} object(s): {summarise(keys)}"
        for verb, keys in (
            ("Created", plan.created),
            ("Updated", plan.updated),
            ("Removed", plan.prune),
        )
        if keys
    ]
    return lines or ["The settings were applied; no object needed to change."]


def _relay_set(ctx: Context) -> bool:
    """Whether the settings name an SMTP relay: without one nothing is ever mailed, so nothing
    is kept where only the outbox would read it (the purged box in the operator's namespace)."""
    return ctx.settings.mail.host is not None


async def _time(ctx: Context) -> datetime.datetime:
    return await notice_time(ctx.kube, clock=ctx.clock)


async def keep(
    ctx: Context, notice: Notice, *, recipients: Sequence[str], box: Box | None = None
) -> None:
    """Record `notice` (transient API errors raise `TransientError`) and wake the outbox."""
    await guard(record(ctx.kube, notice, recipients=recipients, now=await _time(ctx), box=box))
    if ctx.wake_mail is not None:
        ctx.wake_mail()


async def reconcile_notices(
    ctx: Context,
    body: Mapping[str, Any],
    *,
    spec: SecureWebGatewaySpec | None,
    plan: Plan,
    previous: SecureWebGatewayStatus | None,
    status: SecureWebGatewayStatus,
    cancelled: bool,
    new_namespace: bool = False,
) -> None:
    """The notify step of a reconcile whose tenant namespace exists: maintenance, change,
    incident and recovered notices, each once, and the operator version the tenant was last
    reconciled by, all in one write (none when there is nothing new): a new tenant's notice
    history is created with its first change notice and the version in one request, without a
    read when this reconcile made the namespace (`new_namespace`: it cannot hold a history)."""
    meta = body["metadata"]
    name, generation = str(meta["name"]), int(meta.get("generation", 0))
    code = service_code_of(body)
    recipients = contacts_of(body, spec)
    box = tenant_box(name, service_code=code)
    kinds: list[Callable[[datetime.datetime], Notice]] = []
    known: Mapping[str, Any] | Unknown | None = UNKNOWN
    mark = False
    if box.tenant not in ctx.version_checked:
        known = (
            None
            if new_namespace
            else await guard(ctx.kube.find_named(CONFIG_MAP, box.name, namespace=box.namespace))
        )
        seen = str(
            ((known or {}).get("metadata") or {}).get("annotations", {}).get(VERSION_ANNOTATION, "")
        )
        mark = seen != ctx.version
        if seen and mark:
            kinds.append(
                lambda at: events.maintenance(
                    name, service_code=code, from_version=seen, to_version=ctx.version, at=at
                )
            )
    if not cancelled and (previous is None or previous.observed_generation != generation):
        # (the deletion bumps the generation: the cancellation notice says what changed)
        lines = change_lines(plan)
        kinds.append(
            lambda at: events.change(
                name, service_code=code, generation=generation, changes=lines, at=at
            )
        )
    before, now = _ready(previous), _ready(status)
    if not cancelled and now is not None and before is not None:
        if before[0] == "True" and now[0] != "True":
            since, reason, message = now[3], now[1], now[2] or now[1]
            kinds.append(
                lambda at: events.incident(
                    name, service_code=code, since=since, reason=reason, message=message, at=at
                )
            )
        elif before[0] != "True" and now[0] == "True":
            kinds += await _recovery(
                ctx, box, known, code=code, before=before, now=now, previous=previous
            )
    if not kinds and not mark:
        ctx.version_checked.add(box.tenant)
        return
    at = await _time(ctx)
    await guard(
        record_all(
            ctx.kube,
            [make(at) for make in kinds],
            recipients=recipients,
            now=at,
            box=box,
            annotations={VERSION_ANNOTATION: ctx.version} if mark else None,
            known=known,
        )
    )
    ctx.version_checked.add(box.tenant)
    if kinds and ctx.wake_mail is not None:
        ctx.wake_mail()


async def _recovery(
    ctx: Context,
    box: Box,
    known: Mapping[str, Any] | Unknown | None,
    *,
    code: str,
    before: tuple[str, str, str, str],
    now: tuple[str, str, str, str],
    previous: SecureWebGatewayStatus | None,
) -> list[Callable[[datetime.datetime], Notice]]:
    """A recovered notice when an incident was recorded for the not-Ready spell now over (a
    tenant that was never Ready had none, and its history is not read: `never_ready`)."""
    if never_ready(previous):
        return []
    incident = events.incident(
        box.tenant, service_code=code, since=before[3], reason=before[1], message="", at=ctx.clock()
    )
    if isinstance(known, Unknown):
        history, _ = await guard(read(ctx.kube, box))
    else:
        history = decode((known or {}).get("data"))
    if history.find(incident.id) is None:
        return []
    return [lambda at: events.recovered(box.tenant, service_code=code, since=now[3], at=at)]


async def cancellation_notice(
    ctx: Context,
    body: Mapping[str, Any],
    *,
    stamped: CancellationStatus,
    namespace_exists: bool,
) -> None:
    """The cancellation notice: in the tenant namespace while it exists, else in the purged
    box (a purge due at once, or a namespace already gone). Asked on every pass until the
    purge; once this process recorded it, a pass asks nothing (a restarted operator records
    it again, which finds it stored and writes nothing)."""
    name = str(body["metadata"]["name"])
    code = service_code_of(body)

    def notice(at: datetime.datetime) -> Notice:
        return events.cancellation(
            name,
            service_code=code,
            cancelled_at=stamped.cancelled_at or "?",
            purge_at=stamped.purge_at or "?",
            legal_hold=bool(stamped.legal_hold),
            at=at,
        )

    kept = (name, notice(ctx.clock()).id)  # the id names the event, not the time
    if kept in ctx.notices_kept:
        return
    recipients = contacts_of(body, None)
    if namespace_exists:
        try:
            box = tenant_box(name, service_code=code)
            await keep(ctx, notice(await _time(ctx)), recipients=recipients, box=box)
            ctx.notices_kept.add(kept)
            return
        except KubeApiError as err:
            if err.status != 404:
                raise
            # The namespace went meanwhile: keep it with the purge notice.
    if not _relay_set(ctx):
        return  # no relay and no namespace: nowhere it could be read or mailed from
    box = purged_box(name, operator_namespace=ctx.settings.operator_namespace, service_code=code)
    await keep(ctx, notice(await _time(ctx)), recipients=recipients, box=box)
    ctx.notices_kept.add(kept)


def _carried(history: History, entries: Sequence[Entry]) -> History:
    """`history` with those of `entries` it does not hold yet, oldest first."""
    new = [e for e in entries if history.find(e.notice.id) is None]
    if not new:
        return history
    return History(tuple(sorted((*history.entries, *new), key=lambda e: e.notice.time)))


def _moved(history: History, copied: Sequence[Entry], *, where: str, stamp: str) -> History:
    """`history` with the deliveries of `copied` that are still as copied marked as moved
    (settled here: the purged box mails them)."""
    for entry in copied:
        current = history.find(entry.notice.id)
        if current is None:
            continue
        for delivery in entry.deliveries:
            if (
                delivery.state is MailState.PENDING
                and current.delivery(delivery.recipient) == delivery
            ):
                current = current.with_delivery(
                    replace(
                        delivery,
                        state=MailState.FAILED,
                        last_error=f"moved to ConfigMap {where} with the purge",
                        updated=stamp,
                    )
                )
        history = history.replace_entry(current)
    return history


async def carry_over(ctx: Context, body: Mapping[str, Any]) -> float | None:
    """Before the tenant namespace is deleted: its notices whose mail is not settled yet (the
    cancellation, when the purge is due at once) are copied to the purged box, where the outbox
    mails them, then marked as moved in the tenant's. A delivery the outbox is sending now (a
    try claimed within the relay's timeout) is waited for: the seconds to wait, else None."""
    if not _relay_set(ctx):
        return None  # nothing can be mailed: the history goes with the namespace
    name = str(body["metadata"]["name"])
    code = service_code_of(body)
    source = tenant_box(name, service_code=code)
    history, _ = await guard(read(ctx.kube, source))
    waiting = [e for e in history.entries if not e.settled]
    if not waiting:
        return None
    now = await _time(ctx)
    window = datetime.timedelta(seconds=2 * ctx.settings.mail.timeout_seconds + 10)
    for entry in waiting:
        for d in entry.deliveries:
            sending = d.state is MailState.PENDING and d.tries > 0 and d.updated
            if sending and parse_time(d.updated) > now - window:
                return 5.0
    box = purged_box(name, operator_namespace=ctx.settings.operator_namespace, service_code=code)
    await guard(update(ctx.kube, box, lambda stored: _carried(stored, waiting)))
    where = f"{box.namespace}/{box.name}"
    stamp = format_time(now)
    await guard(
        update(ctx.kube, source, lambda stored: _moved(stored, waiting, where=where, stamp=stamp))
    )
    return None


async def purge_notice(
    ctx: Context, body: Mapping[str, Any], *, receipt_name: str, receipt: Mapping[str, str]
) -> None:
    """The purge notice with the signed receipt, in the operator namespace's purged box. With
    no relay set nothing is kept there: no outbox would ever mail and delete it, and no contact
    address may outlive the tenant (the receipt ConfigMap is the lasting record)."""
    if not _relay_set(ctx):
        return
    name = str(body["metadata"]["name"])
    code = service_code_of(body)
    notice = events.purge(
        name, service_code=code, receipt_name=receipt_name, receipt=receipt, at=await _time(ctx)
    )
    box = purged_box(name, operator_namespace=ctx.settings.operator_namespace, service_code=code)
    await keep(ctx, notice, recipients=contacts_of(body, None), box=box)
