"""Each mail of the outbox once (at least once across a crash, then recognisably the same mail),
against the real SMTP relay of the `relay` fixture (conftest.py): a restart before or after the
send, an operator killed between the send and the recorded state, two passes at once, and another
writer of the notices' ConfigMap between our read and our write. The notices' ConfigMap lives in
the in-memory API server, which outlives the "operator" (a mailer and a pass): a restart is a new
mailer and a new pass over what the API server stored."""

from __future__ import annotations

import asyncio
from email.message import EmailMessage

import pytest
from devtools.smtp_relay import Received, RelayCertificate

from fakes import FakeKube
from notices_support import (
    CONTACTS,
    NOW,
    POLICY,
    change_notice,
    cluster,
    deliver,
    deliveries,
    later,
    mailer,
    recorded,
    run,
)
from swg_operator.notices import MailState, deliver_pending, read, record, tenant_box
from swg_operator.notices.mail import SmtpMailer
from swg_operator.notices.model import add, decode, encode


def test_a_restart_between_record_and_send_delivers_once(
    relay_cert: RelayCertificate, relay_port: int, relay: Received
) -> None:
    kube = recorded(CONTACTS)
    # The operator stopped here; a new one (a new mailer, a new pass) finds the mail pending.
    deliver(kube, relay_cert, relay_port, now=later(5))
    deliver(kube, relay_cert, relay_port, now=later(6))
    assert sorted(str(m["To"]) for m in relay.messages) == sorted(CONTACTS)


def test_a_restart_after_send_sends_nothing_again(
    relay_cert: RelayCertificate, relay_port: int, relay: Received
) -> None:
    kube = recorded(CONTACTS)
    deliver(kube, relay_cert, relay_port, now=NOW)
    for minutes in (1, 60, 60 * 24 * 30):  # restarts, at any later time
        report = deliver(kube, relay_cert, relay_port, now=later(minutes))
        assert report.sent == 0
    assert len(relay.messages) == 2


class Killed(BaseException):
    """The operator died (not an error any code catches)."""


class DiesAfterSending:
    def __init__(self, inner: SmtpMailer) -> None:
        self.inner = inner

    @property
    def sender(self) -> str:
        return self.inner.sender

    async def send(self, message: EmailMessage) -> None:
        await self.inner.send(message)
        raise Killed


def test_a_crash_between_send_and_state_resends_the_same_message_id(
    relay_cert: RelayCertificate, relay_port: int, relay: Received
) -> None:
    kube = recorded(CONTACTS[:1])
    with pytest.raises(Killed):
        run(
            deliver_pending(
                kube, DiesAfterSending(mailer(relay_cert, relay_port)), now=NOW, policy=POLICY
            )
        )
    (state,) = run(deliveries(kube)).values()
    assert (state.state, state.tries) == (MailState.PENDING, 1)  # the try was claimed first
    deliver(kube, relay_cert, relay_port, now=later(2))
    assert len(relay.messages) == 2
    assert relay.ids()[0] == relay.ids()[1]  # at-least-once, recognisably the same mail
    (state,) = run(deliveries(kube)).values()
    assert (state.state, state.tries) == (MailState.SENT, 2)


def test_two_passes_at_once_send_each_mail_once(
    relay_cert: RelayCertificate, relay_port: int, relay: Received
) -> None:
    kube = recorded(CONTACTS)

    async def both() -> None:
        await asyncio.gather(
            deliver_pending(kube, mailer(relay_cert, relay_port), now=NOW, policy=POLICY),
            deliver_pending(kube, mailer(relay_cert, relay_port), now=NOW, policy=POLICY),
        )

    run(both())
    assert sorted(str(m["To"]) for m in relay.messages) == sorted(CONTACTS)


def test_two_passes_whose_claims_look_the_same_still_send_once(
    relay_cert: RelayCertificate, relay_port: int, relay: Received
) -> None:
    """The same clock and the same jitter make the same claim, to the second: a pass knows it
    claimed a delivery by having written the claim, not by finding one like its own."""
    kube = recorded(CONTACTS)

    async def both() -> None:
        await asyncio.gather(
            *(
                deliver_pending(
                    kube, mailer(relay_cert, relay_port), now=NOW, policy=POLICY, jitter=lambda: 0.5
                )
                for _ in range(2)
            )
        )

    run(both())
    assert sorted(str(m["To"]) for m in relay.messages) == sorted(CONTACTS)


class InterferingKube(FakeKube):
    """Another writer changes the ConfigMap between our read and our write, once."""

    interfere = True

    def before(self, verb: str, kind: str, namespace: str | None, name: str) -> None:
        if verb != "patch" or not self.interfere:
            return
        self.interfere = False
        self.edit("ConfigMap", name, namespace)
        other = change_notice("generation-3")
        current = self.find("ConfigMap", name, namespace)
        assert current is not None
        current["data"] = encode(add(decode(current["data"]), other, ["x@acme.example"], now=NOW))


def test_a_concurrent_write_is_never_overwritten() -> None:
    kube = cluster(InterferingKube(now=NOW))
    run(record(kube, change_notice("generation-1"), recipients=CONTACTS[:1], now=NOW))
    run(record(kube, change_notice("generation-2"), recipients=CONTACTS[:1], now=NOW))
    history, _ = run(read(kube, tenant_box("acme")))
    assert sorted(e.notice.key for e in history.entries) == [
        "generation-1",
        "generation-2",
        "generation-3",
    ]
