"""The outbox against a real SMTP relay (aiosmtpd on 127.0.0.1 with STARTTLS and AUTH, recording
what it accepts: the `relay` fixture of conftest.py): each contact gets the notice once, a relay
that is down gets it once it is up, wrong credentials and a relay without STARTTLS end in a visible
error, the mailer is built from the settings and their Secret, and the purge notice carries the
signed receipt. Each mail once across restarts, crashes and concurrent passes: test_notices_once.py.
"""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from devtools.smtp_relay import Received, RelayCertificate, SmtpRelay

from notices_support import (
    CONTACTS,
    NOW,
    PASSWORD,
    POLICY,
    USER,
    change_notice,
    cluster,
    deliver,
    deliveries,
    later,
    mailer,
    recorded,
    run,
)
from swg_operator.api import OperatorSettings
from swg_operator.notices import (
    MailState,
    deliver_pending,
    events,
    load_mailer,
    purged_box,
    record,
)
from swg_operator.notices.mail import MailError
from swg_operator.notices.model import format_time
from swg_operator.receipts import read_receipt, sign_receipt, verify_receipt


def test_a_notice_is_delivered_once_to_each_contact(
    relay_cert: RelayCertificate, relay_port: int, relay: Received
) -> None:
    kube = recorded(CONTACTS)
    report = deliver(kube, relay_cert, relay_port, now=NOW)
    assert (report.sent, report.failed, report.retrying) == (2, 0, 0)
    assert sorted(str(m["To"]) for m in relay.messages) == sorted(CONTACTS)
    assert relay.logins == [USER, USER]
    state = run(deliveries(kube))
    assert {d.state for d in state.values()} == {MailState.SENT}
    assert sorted(d.message_id for d in state.values()) == sorted(relay.ids())
    # Recording the same event again (a retried reconcile) sends nothing more.
    run(record(kube, change_notice(), recipients=CONTACTS, now=later(1)))
    deliver(kube, relay_cert, relay_port, now=later(2))
    assert len(relay.messages) == 2


def test_a_relay_down_then_up_gets_the_mail_once(
    relay_cert: RelayCertificate, relay_port: int
) -> None:
    kube = recorded(CONTACTS[:1])
    down = run(
        deliver_pending(
            kube, mailer(relay_cert, relay_port), now=NOW, policy=POLICY, jitter=lambda: 0.5
        )
    )
    assert (down.sent, down.retrying) == (0, 1)
    (state,) = run(deliveries(kube)).values()
    assert (state.state, state.tries) == (MailState.PENDING, 1)
    assert "ConnectionRefusedError" in state.last_error
    assert state.next_attempt == format_time(later(1))  # 60 s, jitter 0.5: no change
    with SmtpRelay(relay_cert, relay_port, user=USER, password=PASSWORD) as received:
        early = deliver(kube, relay_cert, relay_port, now=later(0.5))
        assert (early.sent, received.messages) == (0, [])  # not due yet: backoff
        up = deliver(kube, relay_cert, relay_port, now=later(1))
        assert up.sent == 1
        deliver(kube, relay_cert, relay_port, now=later(60))
    assert len(received.messages) == 1
    (state,) = run(deliveries(kube)).values()
    assert (state.state, state.tries, state.last_error) == (MailState.SENT, 2, "")


def test_wrong_credentials_end_in_a_visible_failed_state(
    relay_cert: RelayCertificate, relay_port: int, relay: Received
) -> None:
    kube = recorded(CONTACTS[:1])
    wrong = mailer(relay_cert, relay_port, password="not-the-password")
    for minutes in (0, 2, 10, 30):
        run(deliver_pending(kube, wrong, now=later(minutes), policy=POLICY, jitter=lambda: 0.0))
    assert relay.messages == []
    (state,) = run(deliveries(kube)).values()
    assert (state.state, state.tries) == (MailState.FAILED, POLICY.max_tries)
    assert "refused the login: 535" in state.last_error
    # The failure is in the ConfigMap the admins read.
    stored = kube.find("ConfigMap", "tenant-notices", "swg-acme")
    assert stored is not None
    assert "refused the login" in stored["data"]["mail.json"]


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_a_relay_without_starttls_gets_no_credentials(
    relay_cert: RelayCertificate, relay_port: int
) -> None:
    kube = recorded(CONTACTS[:1])
    with SmtpRelay(
        relay_cert, relay_port, user=USER, password=PASSWORD, starttls=False
    ) as received:
        deliver(kube, relay_cert, relay_port, now=NOW)
    assert (received.messages, received.logins) == ([], [])
    (state,) = run(deliveries(kube)).values()
    assert "does not offer STARTTLS" in state.last_error


def test_the_mailer_is_built_from_the_settings_and_the_secret(
    relay_cert: RelayCertificate, relay_port: int, relay: Received
) -> None:
    kube = cluster()
    settings = OperatorSettings.model_validate(
        {
            "operatorNamespace": "swg-system",
            "mail": {
                "host": "127.0.0.1",
                "port": relay_port,
                "sender": "swg@provider.example",
                "credentialsSecret": "smtp-relay",
            },
        }
    )
    with pytest.raises(MailError, match="smtp-relay"):
        run(load_mailer(kube, settings, tls=relay_cert.client_context()))
    encoded = {
        k: base64.b64encode(v.encode()).decode()
        for k, v in (("username", USER), ("password", PASSWORD))
    }
    kube.put(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "smtp-relay", "namespace": "swg-system"},
            "data": encoded,
        }
    )
    built = run(load_mailer(kube, settings, tls=relay_cert.client_context()))
    assert built is not None
    run(record(kube, change_notice(), recipients=CONTACTS[:1], now=NOW))
    assert run(deliver_pending(kube, built, now=NOW)).sent == 1
    assert relay.logins == [USER]
    assert run(load_mailer(kube, OperatorSettings(), tls=relay_cert.client_context())) is None


def test_the_purge_notice_mails_the_signed_receipt_and_then_forgets_the_contacts(
    relay_cert: RelayCertificate, relay_port: int, relay: Received
) -> None:
    kube = cluster()
    kube.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "swg-system"}})
    key = Ed25519PrivateKey.generate()
    receipt = sign_receipt(
        {
            "tenant": "acme",
            "tenantUID": "u-1",
            "state": "Completed",
            "deleted": "namespace swg-acme",
        },
        key,
    )
    notice = events.purge(
        "acme", service_code="SWG-0001", receipt_name="purge-acme-u-1", receipt=receipt, at=NOW
    )
    box = purged_box("acme", operator_namespace="swg-system", service_code="SWG-0001")
    run(record(kube, notice, recipients=CONTACTS[:1], now=NOW, box=box))
    assert kube.find("ConfigMap", box.name, "swg-system") is not None
    assert deliver(kube, relay_cert, relay_port, now=NOW).sent == 1
    (message,) = relay.messages
    (attachment,) = [p for p in message.walk() if p.get_filename() == "purge-acme-u-1.json"]
    payload = attachment.get_payload(decode=True)
    assert isinstance(payload, bytes)
    mailed = read_receipt(payload, where="mail")
    assert verify_receipt(mailed, key.public_key()).valid
    # Settled: the next pass deletes the ConfigMap that held the contact's address.
    deliver(kube, relay_cert, relay_port, now=later(1))
    assert kube.find("ConfigMap", box.name, "swg-system") is None
    assert len(relay.messages) == 1
