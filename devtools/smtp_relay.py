"""A real SMTP relay for the notices' tests of both tiers: aiosmtpd on 127.0.0.1 in its own
thread, STARTTLS with a self-signed certificate for 127.0.0.1 made here, AUTH with one login
(required, and only after TLS), recording every login it accepts and every message, which must
have come over TLS."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

HOST = "127.0.0.1"


@dataclass
class Received:
    """What the relay accepted: the messages and the logins, in order."""

    messages: list[Message] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)

    def ids(self) -> list[str]:
        return [str(m["Message-ID"]) for m in self.messages]

    def subjects(self) -> list[str]:
        return [f"{m['To']} {m['Subject']}" for m in self.messages]


@dataclass(frozen=True)
class RelayCertificate:
    """The relay's self-signed certificate (also its own CA) and key, as PEM files."""

    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts this certificate and nothing else."""
        return ssl.create_default_context(cadata=self.cert.read_text())


def relay_certificate(folder: Path) -> RelayCertificate:
    """A certificate for 127.0.0.1 valid from an hour ago for a day, written into `folder`."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "relay.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(HOST))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    found = RelayCertificate(cert=folder / "relay.pem", key=folder / "relay.key")
    found.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    found.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return found


class _Recorder:
    def __init__(self, received: Received) -> None:
        self.received = received

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        assert session.ssl is not None, "a message arrived without TLS"
        self.received.messages.append(message_from_bytes(envelope.original_content or b""))
        return "250 OK"


def _authenticator(received: Received, user: str, password: str) -> Any:
    def check(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and data.login.decode() == user
            and data.password.decode() == password
        )
        if ok:
            received.logins.append(user)
        return AuthResult(success=ok, handled=False)

    return check


class SmtpRelay:
    """The relay on `port`, started and stopped as a context manager that gives its `Received`.
    Without `starttls` it offers no STARTTLS (and still asks for AUTH)."""

    def __init__(
        self,
        certificate: RelayCertificate,
        port: int,
        *,
        user: str,
        password: str,
        starttls: bool = True,
    ) -> None:
        self.received = Received()
        self.port = port
        options: dict[str, Any] = {
            "authenticator": _authenticator(self.received, user, password),
            "auth_required": True,
            "auth_require_tls": starttls,
        }
        if starttls:
            options |= {"tls_context": certificate.server_context(), "require_starttls": True}
        self.controller = Controller(_Recorder(self.received), hostname=HOST, port=port, **options)

    def __enter__(self) -> Received:
        self.controller.start()
        return self.received

    def __exit__(self, *_: object) -> None:
        self.controller.stop()
