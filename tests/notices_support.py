"""Shared parts of the outbox tests against the real SMTP relay of `devtools.smtp_relay` (its
fixtures, `relay_cert`, `relay_port` and `relay`, are in conftest.py): the notices' ConfigMap
lives in the in-memory API server of `fakes`, which outlives the "operator" (a mailer and a
pass): a restart is a new mailer and a new pass over what the API server stored."""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Sequence
from typing import Any

from devtools.smtp_relay import HOST, RelayCertificate

from fakes import FakeKube
from swg_operator.notices import (
    Notice,
    NoticeKind,
    RetryPolicy,
    deliver_pending,
    read,
    record,
    tenant_box,
)
from swg_operator.notices.mail import Credentials, Relay, SmtpMailer
from swg_operator.notices.model import format_time
from swg_operator.notices.outbox import PassReport

NOW = datetime.datetime(2026, 3, 1, 12, 0, tzinfo=datetime.UTC)
USER, PASSWORD = "swg-operator", "s3cret-relay-password"
POLICY = RetryPolicy(max_tries=3, first_wait=60, max_wait=600)
CONTACTS = ("ops@acme.example", "security@acme.example")


def mailer(cert: RelayCertificate, port: int, *, password: str = PASSWORD) -> SmtpMailer:
    """A new operator process's mailer."""
    relay = Relay(host=HOST, port=port, sender="swg@provider.example", timeout_seconds=5)
    return SmtpMailer(relay, credentials=Credentials(USER, password), tls=cert.client_context())


def cluster(kube: FakeKube | None = None) -> FakeKube:
    """`kube` (a new `FakeKube` by default: its merge patch honours a `metadata.resourceVersion`
    precondition, 409 Conflict, as the API server does) with the tenant's namespace."""
    kube = kube or FakeKube(now=NOW)
    kube.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "swg-acme"}})
    return kube


def recorded(recipients: Sequence[str] = CONTACTS) -> FakeKube:
    """A new cluster with `change_notice()` recorded for `recipients` at NOW, not yet mailed."""
    kube = cluster()
    run(record(kube, change_notice(), recipients=recipients, now=NOW))
    return kube


def deliver(
    kube: FakeKube, cert: RelayCertificate, port: int, *, now: datetime.datetime
) -> PassReport:
    """A pass of the outbox at `now` by a new operator process (a new mailer), with POLICY."""
    report: PassReport = run(deliver_pending(kube, mailer(cert, port), now=now, policy=POLICY))
    return report


def change_notice(key: str = "generation-2") -> Notice:
    return Notice(
        kind=NoticeKind.CHANGE,
        tenant="acme",
        service_code="SWG-0001",
        time=format_time(NOW),
        subject="Your gateway's settings changed",
        body=("Sizing: 50 endpoints, 20 requests/s",),
        key=key,
    )


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def deliveries(kube: FakeKube) -> dict[str, Any]:
    history, _ = await read(kube, tenant_box("acme"))
    return {d.recipient: d for e in history.entries for d in e.deliveries}


def later(minutes: float) -> datetime.datetime:
    return NOW + datetime.timedelta(minutes=minutes)
