"""The outbox against a real SMTP server: aiosmtpd on 127.0.0.1 with STARTTLS (a certificate
made here) and AUTH, recording every message it accepts. The notices' ConfigMap lives in the
in-memory API server of `fakes`, which outlives the "operator" (a mailer and a pass): a restart
is a new mailer and a new pass over what the API server stored."""

from __future__ import annotations

import asyncio
import base64
import datetime
import ipaddress
import socket
import ssl
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import EmailMessage, Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from fakes import FakeKube
from swg_operator.api import OperatorSettings
from swg_operator.kube import KubeApiError, ResourceKind
from swg_operator.notices import (
    MailState,
    Notice,
    NoticeKind,
    RetryPolicy,
    deliver_pending,
    load_mailer,
    read,
    record,
    tenant_box,
)
from swg_operator.notices.mail import Credentials, MailError, Relay, SmtpMailer
from swg_operator.notices.model import add, decode, encode, format_time

NOW = datetime.datetime(2026, 3, 1, 12, 0, tzinfo=datetime.UTC)
USER, PASSWORD = "swg-operator", "s3cret-relay-password"
POLICY = RetryPolicy(max_tries=3, first_wait=60, max_wait=600)
CONTACTS = ("ops@acme.example", "security@acme.example")


# --- the SMTP server --------------------------------------------------------------------------


@dataclass
class Received:
    messages: list[Message] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)

    def ids(self) -> list[str]:
        return [str(m["Message-ID"]) for m in self.messages]


class Recorder:
    def __init__(self, received: Received) -> None:
        self.received = received

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        assert session.ssl is not None, "a message arrived without TLS"
        content = envelope.original_content or b""
        self.received.messages.append(message_from_bytes(content))
        return "250 OK"


def authenticator(received: Received) -> Any:
    def check(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and data.login.decode() == USER
            and data.password.decode() == PASSWORD
        )
        if ok:
            received.logins.append(USER)
        return AuthResult(success=ok, handled=False)

    return check


@dataclass(frozen=True)
class Tls:
    server: ssl.SSLContext
    client: ssl.SSLContext


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    """A self-signed certificate for 127.0.0.1, trusted by the client context alone."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "relay.test")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=1))
        .not_valid_after(datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    folder: Path = tmp_path_factory.mktemp("relay-tls")
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    (folder / "cert.pem").write_bytes(cert_pem)
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    client = ssl.create_default_context(cadata=cert_pem.decode())
    return Tls(server=server, client=client)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SmtpServer:
    """aiosmtpd in its thread: STARTTLS required, AUTH required (only after TLS)."""

    def __init__(self, tls: Tls, port: int, *, starttls: bool = True) -> None:
        self.received = Received()
        self.port = port
        kwargs: dict[str, Any] = {
            "authenticator": authenticator(self.received),
            "auth_required": True,
            "auth_require_tls": starttls,
        }
        if starttls:
            kwargs |= {"tls_context": tls.server, "require_starttls": True}
        self.controller = Controller(
            Recorder(self.received), hostname="127.0.0.1", port=port, **kwargs
        )

    def __enter__(self) -> Received:
        self.controller.start()
        return self.received

    def __exit__(self, *_: object) -> None:
        self.controller.stop()


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def relay(tls: Tls, port: int) -> Iterator[Received]:
    with SmtpServer(tls, port) as received:
        yield received


def mailer(tls: Tls, port: int, *, password: str = PASSWORD) -> SmtpMailer:
    """A new operator process's mailer."""
    relay = Relay(host="127.0.0.1", port=port, sender="swg@provider.example", timeout_seconds=5)
    return SmtpMailer(relay, credentials=Credentials(USER, password), tls=tls.client)


# --- the API server ---------------------------------------------------------------------------


class Kube(FakeKube):
    """FakeKube whose merge patch honours a `metadata.resourceVersion` precondition (409), as
    the API server does."""

    async def patch(
        self,
        kind: ResourceKind,
        name: str,
        patch: Mapping[str, Any],
        *,
        namespace: str | None = None,
    ) -> dict[str, Any] | None:
        expected = (patch.get("metadata") or {}).get("resourceVersion")
        stored = self.objects.get((kind.api_version, kind.kind, namespace, name))
        current = None if stored is None else stored["metadata"].get("resourceVersion")
        if expected is not None and current is not None and current != expected:
            raise KubeApiError(409, "the object has been modified", reason="Conflict")
        return await super().patch(kind, name, patch, namespace=namespace)


def cluster() -> Kube:
    kube = Kube(now=NOW)
    kube.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "swg-acme"}})
    return kube


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


async def deliveries(kube: Kube) -> dict[str, Any]:
    history, _ = await read(kube, tenant_box("acme"))
    return {d.recipient: d for e in history.entries for d in e.deliveries}


def later(minutes: float) -> datetime.datetime:
    return NOW + datetime.timedelta(minutes=minutes)


# --- the cases --------------------------------------------------------------------------------


def test_a_notice_is_delivered_once_to_each_contact(tls: Tls, port: int, relay: Received) -> None:
    kube = cluster()
    run(record(kube, change_notice(), recipients=CONTACTS, now=NOW))
    report = run(deliver_pending(kube, mailer(tls, port), now=NOW, policy=POLICY))
    assert (report.sent, report.failed, report.retrying) == (2, 0, 0)
    assert sorted(str(m["To"]) for m in relay.messages) == sorted(CONTACTS)
    assert relay.logins == [USER, USER]
    state = run(deliveries(kube))
    assert {d.state for d in state.values()} == {MailState.SENT}
    assert sorted(d.message_id for d in state.values()) == sorted(relay.ids())
    # Recording the same event again (a retried reconcile) sends nothing more.
    run(record(kube, change_notice(), recipients=CONTACTS, now=later(1)))
    run(deliver_pending(kube, mailer(tls, port), now=later(2), policy=POLICY))
    assert len(relay.messages) == 2


def test_a_relay_down_then_up_gets_the_mail_once(tls: Tls, port: int) -> None:
    kube = cluster()
    run(record(kube, change_notice(), recipients=CONTACTS[:1], now=NOW))
    down = run(deliver_pending(kube, mailer(tls, port), now=NOW, policy=POLICY, jitter=lambda: 0.5))
    assert (down.sent, down.retrying) == (0, 1)
    (state,) = run(deliveries(kube)).values()
    assert (state.state, state.tries) == (MailState.PENDING, 1)
    assert "ConnectionRefusedError" in state.last_error
    assert state.next_attempt == format_time(later(1))  # 60 s, jitter 0.5: no change
    with SmtpServer(tls, port) as received:
        early = run(deliver_pending(kube, mailer(tls, port), now=later(0.5), policy=POLICY))
        assert (early.sent, received.messages) == (0, [])  # not due yet: backoff
        up = run(deliver_pending(kube, mailer(tls, port), now=later(1), policy=POLICY))
        assert up.sent == 1
        run(deliver_pending(kube, mailer(tls, port), now=later(60), policy=POLICY))
    assert len(received.messages) == 1
    (state,) = run(deliveries(kube)).values()
    assert (state.state, state.tries, state.last_error) == (MailState.SENT, 2, "")


def test_a_restart_between_record_and_send_delivers_once(
    tls: Tls, port: int, relay: Received
) -> None:
    kube = cluster()
    run(record(kube, change_notice(), recipients=CONTACTS, now=NOW))
    # The operator stopped here; a new one (a new mailer, a new pass) finds the mail pending.
    run(deliver_pending(kube, mailer(tls, port), now=later(5), policy=POLICY))
    run(deliver_pending(kube, mailer(tls, port), now=later(6), policy=POLICY))
    assert sorted(str(m["To"]) for m in relay.messages) == sorted(CONTACTS)


def test_a_restart_after_send_sends_nothing_again(tls: Tls, port: int, relay: Received) -> None:
    kube = cluster()
    run(record(kube, change_notice(), recipients=CONTACTS, now=NOW))
    run(deliver_pending(kube, mailer(tls, port), now=NOW, policy=POLICY))
    for minutes in (1, 60, 60 * 24 * 30):  # restarts, at any later time
        report = run(deliver_pending(kube, mailer(tls, port), now=later(minutes), policy=POLICY))
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
    tls: Tls, port: int, relay: Received
) -> None:
    kube = cluster()
    run(record(kube, change_notice(), recipients=CONTACTS[:1], now=NOW))
    with pytest.raises(Killed):
        run(deliver_pending(kube, DiesAfterSending(mailer(tls, port)), now=NOW, policy=POLICY))
    (state,) = run(deliveries(kube)).values()
    assert (state.state, state.tries) == (MailState.PENDING, 1)  # the try was claimed first
    run(deliver_pending(kube, mailer(tls, port), now=later(2), policy=POLICY))
    assert len(relay.messages) == 2
    assert relay.ids()[0] == relay.ids()[1]  # at-least-once, recognisably the same mail
    (state,) = run(deliveries(kube)).values()
    assert (state.state, state.tries) == (MailState.SENT, 2)


def test_wrong_credentials_end_in_a_visible_failed_state(
    tls: Tls, port: int, relay: Received
) -> None:
    kube = cluster()
    run(record(kube, change_notice(), recipients=CONTACTS[:1], now=NOW))
    wrong = mailer(tls, port, password="not-the-password")
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
def test_a_relay_without_starttls_gets_no_credentials(tls: Tls, port: int) -> None:
    kube = cluster()
    run(record(kube, change_notice(), recipients=CONTACTS[:1], now=NOW))
    with SmtpServer(tls, port, starttls=False) as received:
        run(deliver_pending(kube, mailer(tls, port), now=NOW, policy=POLICY))
    assert (received.messages, received.logins) == ([], [])
    (state,) = run(deliveries(kube)).values()
    assert "does not offer STARTTLS" in state.last_error


def test_two_passes_at_once_send_each_mail_once(tls: Tls, port: int, relay: Received) -> None:
    kube = cluster()
    run(record(kube, change_notice(), recipients=CONTACTS, now=NOW))

    async def both() -> None:
        await asyncio.gather(
            deliver_pending(kube, mailer(tls, port), now=NOW, policy=POLICY),
            deliver_pending(kube, mailer(tls, port), now=NOW, policy=POLICY),
        )

    run(both())
    assert sorted(str(m["To"]) for m in relay.messages) == sorted(CONTACTS)


class InterferingKube(Kube):
    """Another writer changes the ConfigMap between our read and our write, once."""

    interfere = True

    async def patch(
        self,
        kind: ResourceKind,
        name: str,
        patch: Mapping[str, Any],
        *,
        namespace: str | None = None,
    ) -> dict[str, Any] | None:
        if self.interfere:
            self.interfere = False
            self.edit("ConfigMap", name, namespace)
            other = change_notice("generation-3")
            current = self.find("ConfigMap", name, namespace)
            assert current is not None
            current["data"] = encode(
                add(decode(current["data"]), other, ["x@acme.example"], now=NOW)
            )
        return await super().patch(kind, name, patch, namespace=namespace)


def test_a_concurrent_write_is_never_overwritten() -> None:
    kube = InterferingKube(now=NOW)
    kube.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "swg-acme"}})
    run(record(kube, change_notice("generation-1"), recipients=CONTACTS[:1], now=NOW))
    run(record(kube, change_notice("generation-2"), recipients=CONTACTS[:1], now=NOW))
    history, _ = run(read(kube, tenant_box("acme")))
    assert sorted(e.notice.key for e in history.entries) == [
        "generation-1",
        "generation-2",
        "generation-3",
    ]


def test_the_mailer_is_built_from_the_settings_and_the_secret(
    tls: Tls, port: int, relay: Received
) -> None:
    kube = cluster()
    settings = OperatorSettings.model_validate(
        {
            "operatorNamespace": "swg-system",
            "mail": {
                "host": "127.0.0.1",
                "port": port,
                "sender": "swg@provider.example",
                "credentialsSecret": "smtp-relay",
            },
        }
    )
    with pytest.raises(MailError, match="smtp-relay"):
        run(load_mailer(kube, settings, tls=tls.client))
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
    built = run(load_mailer(kube, settings, tls=tls.client))
    assert built is not None
    run(record(kube, change_notice(), recipients=CONTACTS[:1], now=NOW))
    assert run(deliver_pending(kube, built, now=NOW)).sent == 1
    assert relay.logins == [USER]
    assert run(load_mailer(kube, OperatorSettings(), tls=tls.client)) is None


def test_the_purge_notice_mails_the_signed_receipt_and_then_forgets_the_contacts(
    tls: Tls, port: int, relay: Received
) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from swg_operator.notices import events, purged_box
    from swg_operator.receipts import read_receipt, sign_receipt, verify_receipt

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
    assert run(deliver_pending(kube, mailer(tls, port), now=NOW, policy=POLICY)).sent == 1
    (message,) = relay.messages
    (attachment,) = [p for p in message.walk() if p.get_filename() == "purge-acme-u-1.json"]
    payload = attachment.get_payload(decode=True)
    assert isinstance(payload, bytes)
    mailed = read_receipt(payload, where="mail")
    assert verify_receipt(mailed, key.public_key()).valid
    # Settled: the next pass deletes the ConfigMap that held the contact's address.
    run(deliver_pending(kube, mailer(tls, port), now=later(1), policy=POLICY))
    assert kube.find("ConfigMap", box.name, "swg-system") is None
    assert len(relay.messages) == 1
