"""Notices to a tenant's admins: recorded in the tenant namespace, mailed to its contacts.

The reconcile calls `record` (through `new_notice` for the time); the operator runs a
`Dispatcher` over `deliver_pending`. docs/notices.md says what is recorded and when mail goes.
"""

from swg_operator.notices.mail import Mailer, MailError, SmtpMailer, compose
from swg_operator.notices.model import (
    Delivery,
    Entry,
    History,
    MailState,
    Notice,
    NoticeError,
    NoticeKind,
    message_id,
)
from swg_operator.notices.outbox import Dispatcher, RetryPolicy, deliver_pending, load_mailer
from swg_operator.notices.store import Box, purged_box, read, record, tenant_box

__all__ = [
    "Box",
    "Delivery",
    "Dispatcher",
    "Entry",
    "History",
    "MailError",
    "MailState",
    "Mailer",
    "Notice",
    "NoticeError",
    "NoticeKind",
    "RetryPolicy",
    "SmtpMailer",
    "compose",
    "deliver_pending",
    "load_mailer",
    "message_id",
    "purged_box",
    "read",
    "record",
    "tenant_box",
]
