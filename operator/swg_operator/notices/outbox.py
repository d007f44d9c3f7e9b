"""The outbox: mail every pending delivery, and remember what happened in the ConfigMap.

One pass (`deliver_pending`) lists the notices ConfigMaps (label `swg.dev/notices=true`) and, for
each delivery that is due, in this order:

1. claims the try: `tries` + 1 and the time of the next try (exponential backoff with jitter)
   are written first, with the resourceVersion they were computed from;
2. sends the mail, with the Message-ID derived from the notice and the recipient;
3. writes `sent` with that Message-ID, or, when the relay did not accept it, the error (and
   `failed` once the tries are spent, or at once when the relay refused it for good).

A restart between 1 and 3 finds the delivery pending with a try counted: it is tried again
after the backoff, with the same Message-ID (at-least-once; a mail system that deduplicates by
Message-ID shows it once). A restart after 3 finds it `sent` and never sends it again.

`Dispatcher` runs passes in a task: after `wake()` (a notice was recorded), and every
`interval` seconds for the retries that became due.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import random
import ssl
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Final

from swg_operator.api.settings import MailSettings, OperatorSettings
from swg_operator.kube import KubeApi, KubeApiError
from swg_operator.kube.kinds import CONFIG_MAP, SECRET
from swg_operator.notices.mail import (
    Credentials,
    Mailer,
    MailError,
    Relay,
    SmtpMailer,
    compose,
    sender_domain,
)
from swg_operator.notices.model import (
    Delivery,
    Entry,
    History,
    MailState,
    format_time,
    message_id,
)
from swg_operator.notices.store import NOTICES_LABEL, Box, box_of, read, update

logger = logging.getLogger("swg_operator.notices")

MAX_ERROR: Final = 300


@dataclass(frozen=True)
class RetryPolicy:
    max_tries: int = 10
    first_wait: float = 60.0
    max_wait: float = 3600.0

    @classmethod
    def from_settings(cls, mail: MailSettings) -> RetryPolicy:
        return cls(mail.max_tries, mail.retry_seconds, mail.max_retry_seconds)

    def wait(self, tries: int, jitter: float) -> datetime.timedelta:
        """Before try `tries` + 1: `first_wait` * 2^(tries-1), capped, times 0.5..1.5 with
        `jitter` in [0, 1), so many mails that failed together do not come back together."""
        base = min(self.max_wait, self.first_wait * 2 ** max(0, tries - 1))
        return datetime.timedelta(seconds=base * (0.5 + jitter))


def claimed(delivery: Delivery, *, now: datetime.datetime, wait: datetime.timedelta) -> Delivery:
    """The delivery as written before a try: one more try, the next not before `now + wait`."""
    return replace(
        delivery,
        tries=delivery.tries + 1,
        next_attempt=format_time(now + wait),
        updated=format_time(now),
    )


def settled(
    delivery: Delivery,
    *,
    now: datetime.datetime,
    message: str,
    error: MailError | None,
    max_tries: int,
) -> Delivery:
    """The delivery after a try: sent, pending again, or failed for good."""
    stamp = format_time(now)
    if error is None:
        return replace(
            delivery,
            state=MailState.SENT,
            message_id=message,
            next_attempt="",
            last_error="",
            updated=stamp,
        )
    spent = error.permanent or delivery.tries >= max_tries
    return replace(
        delivery,
        state=MailState.FAILED if spent else MailState.PENDING,
        message_id=message,
        next_attempt="" if spent else delivery.next_attempt,
        last_error=str(error)[:MAX_ERROR],
        updated=stamp,
    )


@dataclass
class PassReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    boxes: int = 0


def _put(notice_id: str, delivery: Delivery) -> Callable[[History], History]:
    """A change that sets one delivery of one notice (when both are still there)."""

    def change(history: History) -> History:
        entry = history.find(notice_id)
        if entry is None or entry.delivery(delivery.recipient) is None:
            return history
        return history.replace_entry(entry.with_delivery(delivery))

    return change


async def _deliver_one(
    kube: KubeApi,
    mailer: Mailer,
    box: Box,
    entry: Entry,
    delivery: Delivery,
    *,
    now: datetime.datetime,
    policy: RetryPolicy,
    jitter: float,
    report: PassReport,
) -> None:
    notice = entry.notice
    claim = claimed(delivery, now=now, wait=policy.wait(delivery.tries + 1, jitter))
    # Whether this pass wrote the claim: another pass at the same time, clock and jitter
    # writes a claim equal to this one (times are to the second), so finding one like it
    # stored proves nothing. `update` computes `take` again after a conflict: the last says.
    took = False

    def take(history: History) -> History:
        nonlocal took
        current = history.find(notice.id)
        seen = current.delivery(delivery.recipient) if current else None
        took = seen == delivery  # else settled or claimed by another pass meanwhile
        return _put(notice.id, claim)(history) if took else history

    await update(kube, box, take)
    if not took:
        return
    mid = message_id(notice.id, delivery.recipient, domain=sender_domain(mailer.sender))
    error: MailError | None = None
    try:
        await mailer.send(compose(notice, delivery.recipient, sender=mailer.sender, message_id=mid))
    except MailError as err:
        error = err
    after = settled(claim, now=now, message=mid, error=error, max_tries=policy.max_tries)
    await update(kube, box, _put(notice.id, after))
    where = f"ConfigMap {box.namespace}/{box.name}"
    if after.state is MailState.SENT:
        report.sent += 1
        logger.info("Mailed %s notice %s (%s) as %s", notice.kind, notice.id, where, mid)
    elif after.state is MailState.FAILED:
        report.failed += 1
        logger.warning(
            "Gave up mailing %s notice %s (%s) after %d tries: %s",
            notice.kind,
            notice.id,
            where,
            after.tries,
            after.last_error,
        )
    else:
        report.retrying += 1
        logger.warning(
            "Failed to mail %s notice %s (%s), try %d, next at %s: %s",
            notice.kind,
            notice.id,
            where,
            after.tries,
            after.next_attempt,
            after.last_error,
        )


async def deliver_pending(
    kube: KubeApi,
    mailer: Mailer,
    *,
    now: datetime.datetime,
    policy: RetryPolicy = RetryPolicy(),
    jitter: Callable[[], float] = random.random,
    namespace: str | None = None,
) -> PassReport:
    """One pass over every notices ConfigMap (in `namespace`, or in all): send what is due.
    `now` is the time the due dates are judged by (the API server's, when it answered)."""
    report = PassReport()
    boxes = await kube.list_labelled(
        CONFIG_MAP, selector=f"{NOTICES_LABEL}=true", namespace=namespace
    )
    for obj in boxes:
        box = box_of(obj)
        report.boxes += 1
        history, _ = await read(kube, box)
        if box.purged and all(entry.settled for entry in history.entries):
            # The tenant is gone and its last mail settled: keep no contact address longer.
            await kube.delete(CONFIG_MAP, box.name, namespace=box.namespace)
            logger.info("Deleted ConfigMap %s/%s: its mail is settled", box.namespace, box.name)
            continue
        for entry, delivery in history.pending(now):
            await _deliver_one(
                kube,
                mailer,
                box,
                entry,
                delivery,
                now=now,
                policy=policy,
                jitter=jitter(),
                report=report,
            )
    return report


async def load_mailer(
    kube: KubeApi, settings: OperatorSettings, *, tls: ssl.SSLContext | None = None
) -> SmtpMailer | None:
    """The relay of `settings.mail` with the login its credentials Secret holds (read by name
    in the operator's namespace); None when no relay is set (no mail is sent)."""
    mail = settings.mail
    if mail.host is None:
        return None
    credentials = None
    if mail.credentials_secret is not None:
        secret = await kube.get(
            SECRET, mail.credentials_secret, namespace=settings.operator_namespace
        )
        if secret is None:
            raise MailError(
                f"Secret {settings.operator_namespace}/{mail.credentials_secret} "
                "(mail.credentialsSecret) does not exist"
            )
        credentials = Credentials.from_secret_data(
            {str(k): str(v) for k, v in (secret.get("data") or {}).items()},
            secret=mail.credentials_secret,
        )
    relay = Relay(
        host=mail.host,
        port=mail.port,
        sender=mail.sender,
        starttls=mail.starttls,
        timeout_seconds=mail.timeout_seconds,
    )
    return SmtpMailer(relay, credentials=credentials, tls=tls)


class Dispatcher:
    """Runs `deliver_pending` passes: at once after `wake()`, else every `interval` seconds.
    A pass that fails (API server away) is logged and retried at the next."""

    def __init__(
        self,
        kube: KubeApi,
        mailer: Mailer,
        *,
        clock: Callable[[], datetime.datetime],
        policy: RetryPolicy = RetryPolicy(),
        interval: float = 30.0,
    ) -> None:
        self._kube = kube
        self._mailer = mailer
        self._clock = clock
        self._policy = policy
        self._interval = interval
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while True:
            self._wake.clear()
            try:
                await deliver_pending(
                    self._kube, self._mailer, now=await self._now(), policy=self._policy
                )
            except (KubeApiError, MailError, RuntimeError) as err:
                logger.warning("Failed a pass over the notices' outbox: %s", err)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._interval)

    async def _now(self) -> datetime.datetime:
        try:
            return await self._kube.server_time()
        except KubeApiError:
            return self._clock()
