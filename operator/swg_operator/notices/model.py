"""Notices to a tenant's admins, their bounded history and their mail's delivery state.

A notice says what happened to the customer's gateway (a change, an operator upgrade, an
incident, the cancellation, the purge) in a few lines for people. Its id is stable: derived from
the tenant, the kind and a caller's `key` naming the event (`generation-7`, `ready-lost-<time>`),
so recording the same event twice (a reconcile retried after a crash) keeps one notice and sends
one mail. The history keeps 90 days and at most `MAX_ENTRIES` notices and `MAX_BYTES` bytes of
JSON, so it always fits one ConfigMap (1 MiB).

Each notice carries one delivery per contact: `pending` (with the tries made and when the next
may be made), `sent` (with the Message-ID the relay accepted) or `failed` (after the last try,
with the relay's answer). The Message-ID is derived from the notice id and the recipient, so a
mail sent again after a crash between the relay's acceptance and the state's write is the same
message to every mail system that deduplicates by Message-ID.

Pure: no I/O, no clock (`now` is passed in).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Final

MAX_AGE: Final = datetime.timedelta(days=90)
MAX_ENTRIES: Final = 500
MAX_BYTES: Final = 256 * 1024  # of the two JSON values together; a ConfigMap holds 1 MiB
MAX_SUBJECT: Final = 200
MAX_LINE: Final = 500
MAX_LINES: Final = 40
MAX_RECIPIENTS: Final = 16  # spec.contacts holds at most 16

NOTICES_KEY: Final = "notices.json"
MAIL_KEY: Final = "mail.json"

MAX_ATTACHMENT: Final = 64 * 1024

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_ATTACHMENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class NoticeError(ValueError):
    """A notice or a stored history is not valid; the message names the field."""


class NoticeKind(StrEnum):
    CHANGE = "change"
    MAINTENANCE = "maintenance"
    INCIDENT = "incident"
    CANCELLATION = "cancellation"
    PURGE = "purge"


class MailState(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


def format_time(value: datetime.datetime) -> str:
    """RFC 3339 UTC to the second, as the API server writes times."""
    if value.tzinfo is None:
        raise NoticeError("time: a timezone-aware datetime is required")
    return value.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str, *, field_name: str = "time") -> datetime.datetime:
    try:
        value = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise NoticeError(f"{field_name}: {text!r} is not an RFC 3339 time") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.UTC)
    return value.astimezone(datetime.UTC)


def _one_line(text: str, *, field_name: str, limit: int) -> str:
    """`text` as one header-safe line: a line break or control character in it could add a
    mail header, so it is refused, as is a text beyond `limit` characters."""
    if _CONTROL.search(text):
        raise NoticeError(f"{field_name}: a line break or control character is not allowed")
    if len(text) > limit:
        raise NoticeError(f"{field_name}: {len(text)} characters, at most {limit}")
    return text


@dataclass(frozen=True)
class Notice:
    kind: NoticeKind
    tenant: str
    service_code: str
    time: str  # RFC 3339 UTC, from the API server's clock when it answered
    subject: str
    body: tuple[str, ...] = ()
    key: str = ""  # names the event: the same key is the same notice
    # (file name, text): sent with the mail, e.g. the signed purge receipt as JSON.
    attachments: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        NoticeKind(self.kind)
        parse_time(self.time)
        for name in ("tenant", "service_code", "key"):
            _one_line(getattr(self, name), field_name=name, limit=MAX_SUBJECT)
        if not self.tenant:
            raise NoticeError("tenant: must not be empty")
        if not self.subject.strip():
            raise NoticeError("subject: must not be empty")
        _one_line(self.subject, field_name="subject", limit=MAX_SUBJECT)
        if len(self.body) > MAX_LINES:
            raise NoticeError(f"body: {len(self.body)} lines, at most {MAX_LINES}")
        for index, line in enumerate(self.body):
            _one_line(line, field_name=f"body[{index}]", limit=MAX_LINE)
        for index, (name, text) in enumerate(self.attachments):
            if not _ATTACHMENT_NAME.match(name):
                raise NoticeError(f"attachments[{index}]: name {name!r} is not a plain file name")
            if len(text.encode()) > MAX_ATTACHMENT:
                raise NoticeError(f"attachments[{index}]: larger than {MAX_ATTACHMENT} bytes")

    @property
    def id(self) -> str:
        """Stable: from tenant, kind and key; without a key, from the whole content."""
        if self.key:
            basis = [self.tenant, str(self.kind), self.key]
        else:
            basis = [self.tenant, str(self.kind), self.time, self.subject, *self.body]
        return hashlib.sha256("\x1f".join(basis).encode()).hexdigest()[:20]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "kind": str(self.kind),
            "tenant": self.tenant,
            "serviceCode": self.service_code,
            "time": self.time,
            "subject": self.subject,
            "body": list(self.body),
        }
        if self.key:
            out["key"] = self.key
        if self.attachments:
            out["attachments"] = [{"name": n, "text": t} for n, t in self.attachments]
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], *, where: str = "notice") -> Notice:
        try:
            notice = cls(
                kind=NoticeKind(raw["kind"]),
                tenant=str(raw["tenant"]),
                service_code=str(raw.get("serviceCode", "")),
                time=str(raw["time"]),
                subject=str(raw["subject"]),
                body=tuple(str(line) for line in raw.get("body", ())),
                key=str(raw.get("key", "")),
                attachments=tuple(
                    (str(a["name"]), str(a["text"])) for a in raw.get("attachments", ())
                ),
            )
        except KeyError as err:
            raise NoticeError(f"{where}: field {err.args[0]} is missing") from None
        except ValueError as err:
            raise NoticeError(f"{where}: {err}") from None
        if "id" in raw and raw["id"] != notice.id:
            raise NoticeError(f"{where}: id {raw['id']!r} does not match its content")
        return notice


def message_id(notice_id: str, recipient: str, *, domain: str) -> str:
    """The Message-ID of `notice_id`'s mail to `recipient`: the same on every (re)send."""
    who = hashlib.sha256(recipient.lower().encode()).hexdigest()[:12]
    return f"<swg-notice.{notice_id}.{who}@{domain}>"


@dataclass(frozen=True)
class Delivery:
    recipient: str
    state: MailState = MailState.PENDING
    tries: int = 0
    next_attempt: str = ""  # RFC 3339; empty: at once
    message_id: str = ""
    last_error: str = ""
    updated: str = ""

    def due(self, now: datetime.datetime) -> bool:
        if self.state is not MailState.PENDING:
            return False
        return not self.next_attempt or parse_time(self.next_attempt) <= now

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"state": str(self.state), "tries": self.tries}
        for name, key in (
            ("next_attempt", "nextAttempt"),
            ("message_id", "messageId"),
            ("last_error", "lastError"),
            ("updated", "updated"),
        ):
            if getattr(self, name):
                out[key] = getattr(self, name)
        return out

    @classmethod
    def from_dict(cls, recipient: str, raw: Mapping[str, Any], *, where: str) -> Delivery:
        try:
            return cls(
                recipient=recipient,
                state=MailState(raw.get("state", "pending")),
                tries=int(raw.get("tries", 0)),
                next_attempt=str(raw.get("nextAttempt", "")),
                message_id=str(raw.get("messageId", "")),
                last_error=str(raw.get("lastError", "")),
                updated=str(raw.get("updated", "")),
            )
        except ValueError as err:
            raise NoticeError(f"{where}: {err}") from None


@dataclass(frozen=True)
class Entry:
    notice: Notice
    deliveries: tuple[Delivery, ...] = ()

    @property
    def settled(self) -> bool:
        return all(d.state is not MailState.PENDING for d in self.deliveries)

    def delivery(self, recipient: str) -> Delivery | None:
        return next((d for d in self.deliveries if d.recipient == recipient), None)

    def with_delivery(self, delivery: Delivery) -> Entry:
        kept = tuple(delivery if d.recipient == delivery.recipient else d for d in self.deliveries)
        return replace(self, deliveries=kept)


@dataclass(frozen=True)
class History:
    """Notices, oldest first, each with its deliveries."""

    entries: tuple[Entry, ...] = field(default=())

    def find(self, notice_id: str) -> Entry | None:
        return next((e for e in self.entries if e.notice.id == notice_id), None)

    def replace_entry(self, entry: Entry) -> History:
        return History(tuple(entry if e.notice.id == entry.notice.id else e for e in self.entries))

    def pending(self, now: datetime.datetime) -> list[tuple[Entry, Delivery]]:
        return [(e, d) for e in self.entries for d in e.deliveries if d.due(now)]


def add(
    history: History,
    notice: Notice,
    recipients: Iterable[str],
    *,
    now: datetime.datetime,
) -> History:
    """`history` with `notice` and one pending delivery per recipient (each address once, case
    kept as given), bounded. A notice already there (same id) is left as it is."""
    if history.find(notice.id) is not None:
        return history
    seen: dict[str, str] = {}
    for address in recipients:
        _one_line(address, field_name="recipient", limit=254)
        if "@" not in address:
            raise NoticeError(f"recipient: {address!r} is not an e-mail address")
        seen.setdefault(address.lower(), address)
    if len(seen) > MAX_RECIPIENTS:
        raise NoticeError(f"recipients: {len(seen)}, at most {MAX_RECIPIENTS}")
    stamp = format_time(now)
    deliveries = tuple(Delivery(recipient=a, updated=stamp) for a in seen.values())
    entries = sorted((*history.entries, Entry(notice, deliveries)), key=lambda e: e.notice.time)
    return bound(History(tuple(entries)), now=now)


def bound(
    history: History,
    *,
    now: datetime.datetime,
    max_age: datetime.timedelta = MAX_AGE,
    max_entries: int = MAX_ENTRIES,
    max_bytes: int = MAX_BYTES,
) -> History:
    """Drop notices older than `max_age`, then the oldest until at most `max_entries` remain and
    the encoded history fits `max_bytes`: notices whose mail is settled go first, so a pending
    mail is dropped only when the history holds nothing else to drop."""
    cutoff = now - max_age
    entries = [e for e in history.entries if parse_time(e.notice.time) >= cutoff]
    sizes = {e.notice.id: _entry_size(e) for e in entries}
    total = _EMPTY_SIZE + sum(sizes.values())
    while entries and (len(entries) > max_entries or total > max_bytes):
        victim = next((e for e in entries if e.settled), entries[0])
        entries.remove(victim)
        total -= sizes[victim.notice.id]
    return History(tuple(entries))


# --- codec: the ConfigMap's data ----------------------------------------------------------------


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _notice_json(entry: Entry) -> str:
    return _json(entry.notice.to_dict())


def _mail_json(entry: Entry) -> str:
    """One member of the mail mapping, `"<id>":{...}`."""
    deliveries = {d.recipient: d.to_dict() for d in entry.deliveries}
    return f"{_json(entry.notice.id)}:{_json(deliveries)}"


# "[]" and "{}"; each entry adds its two members and, past the first, two commas.
_EMPTY_SIZE: Final = 4


def _entry_size(entry: Entry) -> int:
    """What `entry` adds to the encoded history, in bytes (exact: compact JSON)."""
    return len(_notice_json(entry).encode()) + len(_mail_json(entry).encode()) + 2


def encode(history: History) -> dict[str, str]:
    """The ConfigMap `data`: the notices (what admins read) and the mail state, apart; compact
    JSON, one notice after the other, oldest first."""
    return {
        NOTICES_KEY: "[" + ",".join(_notice_json(e) for e in history.entries) + "]",
        MAIL_KEY: "{" + ",".join(_mail_json(e) for e in history.entries) + "}",
    }


def encoded_size(history: History) -> int:
    return sum(len(v.encode()) for v in encode(history).values())


def decode(data: Mapping[str, str] | None) -> History:
    """The history a ConfigMap's `data` holds (empty for none); a damaged value is an error
    naming its key."""
    data = data or {}
    try:
        raw_notices = json.loads(data.get(NOTICES_KEY) or "[]")
    except json.JSONDecodeError as err:
        raise NoticeError(f"{NOTICES_KEY}: not JSON ({err})") from None
    try:
        raw_mail = json.loads(data.get(MAIL_KEY) or "{}")
    except json.JSONDecodeError as err:
        raise NoticeError(f"{MAIL_KEY}: not JSON ({err})") from None
    if not isinstance(raw_notices, list):
        raise NoticeError(f"{NOTICES_KEY}: a list of notices is expected")
    if not isinstance(raw_mail, dict):
        raise NoticeError(f"{MAIL_KEY}: a mapping of notice id to deliveries is expected")
    entries = []
    for index, raw in enumerate(raw_notices):
        if not isinstance(raw, dict):
            raise NoticeError(f"{NOTICES_KEY}[{index}]: an object is expected")
        notice = Notice.from_dict(raw, where=f"{NOTICES_KEY}[{index}]")
        per = raw_mail.get(notice.id) or {}
        deliveries = tuple(
            Delivery.from_dict(str(r), d, where=f"{MAIL_KEY}[{notice.id}][{r}]")
            for r, d in per.items()
        )
        entries.append(Entry(notice, deliveries))
    return History(tuple(entries))
