"""Mail: a notice as an e-mail, and the SMTP relay that sends it.

`compose` is pure. `SmtpMailer` sends one message per call through the platform's relay with the
standard library's `smtplib`, run in a worker thread so the operator's event loop never waits on
the network: STARTTLS is required unless the settings say otherwise (a relay that does not offer
it is refused before any credential or address is sent), the login uses the credentials Secret
the chart names, and every connection has a timeout. Retries are not made here: the outbox
(`notices.outbox`) decides when to try again, with backoff, and remembers it across restarts.
"""

from __future__ import annotations

import asyncio
import base64
import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Protocol

from swg_operator.notices.model import Notice, parse_time


class MailError(Exception):
    """A message was not accepted. `permanent`: the relay refused it for good (5xx on the
    recipient or the content), so a retry would be refused again."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class Mailer(Protocol):
    @property
    def sender(self) -> str: ...

    async def send(self, message: EmailMessage) -> None:
        """Hand `message` to the relay; raises `MailError` when it was not accepted."""
        ...


def sender_domain(sender: str) -> str:
    return sender.rpartition("@")[2] or "localhost"


def compose(notice: Notice, recipient: str, *, sender: str, message_id: str) -> EmailMessage:
    """The mail of `notice` to `recipient`. Its fields come from a validated `Notice` (one line
    each, no control character), so no header can be added through them."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = f"[{notice.service_code or notice.tenant}] {notice.subject}"
    message["Date"] = format_datetime(parse_time(notice.time))
    message["Message-ID"] = message_id
    message["Auto-Submitted"] = "auto-generated"
    message["X-SWG-Tenant"] = notice.tenant
    message["X-SWG-Notice"] = f"{notice.kind} {notice.id}"
    lines = [
        notice.subject,
        "",
        *notice.body,
        "",
        "--",
        f"Tenant {notice.tenant}, service code {notice.service_code or '-'}",
        f"Notice {notice.id} ({notice.kind}) at {notice.time}",
        f"Your admins can list every notice with: kubectl swg notices {notice.tenant}",
    ]
    message.set_content("\n".join(lines) + "\n")
    for name, text in notice.attachments:
        if name.endswith(".json"):
            message.add_attachment(
                text.encode(), maintype="application", subtype="json", filename=name
            )
        else:
            message.add_attachment(text, subtype="plain", filename=name)
    return message


@dataclass(frozen=True)
class Relay:
    host: str
    port: int = 587
    sender: str = ""
    starttls: bool = True
    timeout_seconds: float = 30.0


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str

    @classmethod
    def from_secret_data(cls, data: Mapping[str, str], *, secret: str) -> Credentials:
        """From a Secret's base64 `data` (keys `username` and `password`)."""
        try:
            return cls(
                username=base64.b64decode(data["username"]).decode(),
                password=base64.b64decode(data["password"]).decode(),
            )
        except KeyError as err:
            raise MailError(f"Secret {secret}: key {err.args[0]} is missing") from None
        except ValueError as err:
            raise MailError(f"Secret {secret}: not base64 text ({err})") from None


class SmtpMailer:
    """`Mailer` over SMTP (submission, STARTTLS) with smtplib in a worker thread."""

    def __init__(
        self,
        relay: Relay,
        *,
        credentials: Credentials | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.relay = relay
        self._credentials = credentials
        self._tls = tls or ssl.create_default_context()

    @property
    def sender(self) -> str:
        return self.relay.sender

    async def send(self, message: EmailMessage) -> None:
        await asyncio.to_thread(self._send, message)

    def _send(self, message: EmailMessage) -> None:
        relay = self.relay
        where = f"relay {relay.host}:{relay.port}"
        try:
            with smtplib.SMTP(relay.host, relay.port, timeout=relay.timeout_seconds) as smtp:
                smtp.ehlo()
                if relay.starttls:
                    if not smtp.has_extn("starttls"):
                        raise MailError(f"{where} does not offer STARTTLS, which is required")
                    smtp.starttls(context=self._tls)
                    smtp.ehlo()
                if self._credentials is not None:
                    smtp.login(self._credentials.username, self._credentials.password)
                refused = smtp.send_message(message)
                if refused:
                    raise MailError(f"{where} refused {', '.join(refused)}", permanent=True)
        except MailError:
            raise
        except smtplib.SMTPAuthenticationError as err:
            raise MailError(f"{where} refused the login: {_answer(err)}") from err
        except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused) as err:
            raise MailError(f"{where} refused the message: {err}", permanent=True) from err
        except smtplib.SMTPResponseException as err:
            raise MailError(
                f"{where}: {_answer(err)}", permanent=500 <= err.smtp_code < 600
            ) from err
        except (smtplib.SMTPException, OSError) as err:
            raise MailError(f"{where}: {type(err).__name__}: {err}") from err


def _answer(err: smtplib.SMTPResponseException) -> str:
    text = err.smtp_error.decode(errors="replace") if isinstance(err.smtp_error, bytes) else ""
    return f"{err.smtp_code} {text}".strip()
