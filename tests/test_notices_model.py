"""Notices without I/O: the notice, its id, the history's bounds, the ConfigMap codec, the
outbox's state transitions and the mail a notice becomes."""

from __future__ import annotations

import datetime
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swg_operator.notices.mail import MailError, compose
from swg_operator.notices.model import (
    MAIL_KEY,
    MAX_BYTES,
    NOTICES_KEY,
    Delivery,
    History,
    MailState,
    Notice,
    NoticeError,
    NoticeKind,
    add,
    bound,
    decode,
    encode,
    encoded_size,
    format_time,
    message_id,
)
from swg_operator.notices.outbox import RetryPolicy, claimed, settled

NOW = datetime.datetime(2026, 3, 1, 12, 0, tzinfo=datetime.UTC)


def notice(
    *,
    kind: NoticeKind = NoticeKind.CHANGE,
    at: datetime.datetime = NOW,
    key: str = "generation-2",
    subject: str = "Spec changed",
    body: tuple[str, ...] = ("Sizing: 50 endpoints",),
) -> Notice:
    return Notice(
        kind=kind,
        tenant="acme",
        service_code="SWG-0001",
        time=format_time(at),
        subject=subject,
        body=body,
        key=key,
    )


def test_the_id_is_stable_per_event_and_differs_between_events() -> None:
    first = notice()
    again = notice(at=NOW + datetime.timedelta(minutes=5), body=("retried",))
    assert first.id == again.id  # the same event (key), recorded again after a crash
    assert notice(key="generation-3").id != first.id
    assert notice(kind=NoticeKind.INCIDENT).id != first.id
    assert notice(key="").id != notice(key="", subject="Other").id


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("subject", "Bcc: x@example.com\nhello", "subject"),
        ("subject", "", "subject"),
        ("subject", "x" * 201, "subject"),
        ("body", ("ok", "bad\r\nline"), "body[1]"),
        ("body", ("l",) * 41, "body"),
        ("time", "yesterday", "time"),
        ("tenant", "", "tenant"),
    ],
)
def test_bad_notices_are_refused_naming_the_field(field: str, value: object, named: str) -> None:
    fields: dict[str, object] = {
        "kind": NoticeKind.CHANGE,
        "tenant": "acme",
        "service_code": "SWG-1",
        "time": format_time(NOW),
        "subject": "s",
        field: value,
    }
    with pytest.raises(NoticeError, match=named.replace("[", r"\[")):
        Notice(**fields)  # type: ignore[arg-type]


def test_a_notice_is_added_once_with_one_pending_delivery_per_address() -> None:
    history = add(History(), notice(), ["a@example.com", "A@example.com", "b@example.com"], now=NOW)
    (entry,) = history.entries
    assert [d.recipient for d in entry.deliveries] == ["a@example.com", "b@example.com"]
    assert all(d.state is MailState.PENDING for d in entry.deliveries)
    assert (
        add(history, notice(at=NOW + datetime.timedelta(hours=1)), ["c@example.com"], now=NOW)
        == history
    )
    with pytest.raises(NoticeError, match="recipient"):
        add(History(), notice(), ["not-an-address"], now=NOW)


def test_notices_older_than_90_days_are_dropped() -> None:
    old = notice(key="old", at=NOW - datetime.timedelta(days=90, seconds=1))
    edge = notice(key="edge", at=NOW - datetime.timedelta(days=90))
    history = add(add(History(), old, [], now=old_time(old)), edge, [], now=NOW)
    assert [e.notice.key for e in history.entries] == ["edge"]


def old_time(n: Notice) -> datetime.datetime:
    return datetime.datetime.fromisoformat(n.time.replace("Z", "+00:00"))


def test_the_count_bound_drops_settled_notices_before_pending_ones() -> None:
    history = History()
    for i in range(5):
        history = add(
            history,
            notice(key=f"k{i}", at=NOW + datetime.timedelta(seconds=i)),
            ["a@example.com"],
            now=NOW,
        )
    # The two oldest have settled mail, the third is pending.
    entries = list(history.entries)
    for i in (1, 3):
        (d,) = entries[i].deliveries
        entries[i] = entries[i].with_delivery(
            settled(d, now=NOW, message="<m>", error=None, max_tries=3)
        )
    kept = bound(History(tuple(entries)), now=NOW, max_entries=3)
    assert [e.notice.key for e in kept.entries] == ["k0", "k2", "k4"]
    assert len(bound(History(tuple(entries)), now=NOW, max_entries=1).entries) == 1


@settings(max_examples=20, deadline=None)
@given(st.integers(min_value=1, max_value=60))
def test_the_history_always_fits_its_byte_bound(lines: int) -> None:
    history = History()
    body = tuple("x" * 480 for _ in range(min(lines, 40)))
    for i in range(lines * 3):
        history = add(
            history,
            notice(key=f"k{i}", at=NOW + datetime.timedelta(seconds=i), body=body),
            [f"c{j}@example.com" for j in range(3)],
            now=NOW + datetime.timedelta(seconds=i),
        )
    assert encoded_size(history) <= MAX_BYTES
    assert history.entries[-1].notice.key == f"k{lines * 3 - 1}"  # the newest is always kept


def test_the_codec_round_trips_and_keeps_notices_and_mail_apart() -> None:
    history = add(History(), notice(), ["a@example.com"], now=NOW)
    (entry,) = history.entries
    (d,) = entry.deliveries
    history = history.replace_entry(
        entry.with_delivery(
            settled(
                claimed(d, now=NOW, wait=datetime.timedelta(0)),
                now=NOW,
                message="<m@x>",
                error=None,
                max_tries=3,
            )
        )
    )
    data = encode(history)
    assert decode(data) == history
    assert "a@example.com" not in data[NOTICES_KEY]
    mail = json.loads(data[MAIL_KEY])
    assert mail[entry.notice.id]["a@example.com"] == {
        "state": "sent",
        "tries": 1,
        "messageId": "<m@x>",
        "updated": "2026-03-01T12:00:00Z",
    }
    assert decode(None) == History()


@pytest.mark.parametrize(
    ("data", "named"),
    [
        ({NOTICES_KEY: "{"}, NOTICES_KEY),
        ({NOTICES_KEY: "{}"}, NOTICES_KEY),
        ({MAIL_KEY: "[]"}, MAIL_KEY),
        ({NOTICES_KEY: '[{"kind": "change"}]'}, "tenant"),
        (
            {
                NOTICES_KEY: '[{"kind": "rumour", "tenant": "a", '
                '"time": "2026-01-01T00:00:00Z", "subject": "s"}]'
            },
            "rumour",
        ),
    ],
)
def test_a_damaged_configmap_is_an_error_naming_the_key(data: dict[str, str], named: str) -> None:
    with pytest.raises(NoticeError, match=named):
        decode(data)


def test_a_tampered_id_is_refused() -> None:
    data = encode(add(History(), notice(), [], now=NOW))
    raw = json.loads(data[NOTICES_KEY])
    raw[0]["id"] = "0" * 20
    with pytest.raises(NoticeError, match="does not match"):
        decode({NOTICES_KEY: json.dumps(raw)})


def test_backoff_doubles_with_jitter_up_to_the_cap() -> None:
    policy = RetryPolicy(max_tries=5, first_wait=60, max_wait=600)
    assert policy.wait(1, 0.5) == datetime.timedelta(seconds=60)
    assert policy.wait(2, 0.5) == datetime.timedelta(seconds=120)
    assert policy.wait(3, 0.0) == datetime.timedelta(seconds=120)
    assert policy.wait(3, 0.999) < datetime.timedelta(seconds=360)
    assert policy.wait(10, 0.5) == datetime.timedelta(seconds=600)


def test_a_delivery_fails_after_its_tries_or_at_once_when_refused_for_good() -> None:
    d = Delivery("a@example.com")
    one = claimed(d, now=NOW, wait=datetime.timedelta(minutes=1))
    assert one.tries == 1
    assert not one.due(NOW)
    assert one.due(NOW + datetime.timedelta(minutes=1))
    again = settled(one, now=NOW, message="<m>", error=MailError("down"), max_tries=2)
    assert (again.state, again.last_error) == (MailState.PENDING, "down")
    two = claimed(again, now=NOW, wait=datetime.timedelta(minutes=2))
    assert (
        settled(two, now=NOW, message="<m>", error=MailError("down"), max_tries=2).state
        is MailState.FAILED
    )
    refused = settled(
        one, now=NOW, message="<m>", error=MailError("550", permanent=True), max_tries=9
    )
    assert refused.state is MailState.FAILED
    assert not refused.due(NOW + datetime.timedelta(days=1))


def test_message_ids_are_deterministic_per_notice_and_recipient() -> None:
    n = notice()
    first = message_id(n.id, "a@example.com", domain="example.net")
    assert first == message_id(n.id, "A@example.com", domain="example.net")
    assert first != message_id(n.id, "b@example.com", domain="example.net")
    assert first.startswith(f"<swg-notice.{n.id}.")
    assert first.endswith("@example.net>")


def test_the_mail_carries_the_notice() -> None:
    n = notice(body=("Sizing: 50 endpoints", "Anti-virus: off"))
    mail = compose(n, "a@example.com", sender="ops@example.net", message_id="<m@example.net>")
    assert mail["Subject"] == "[SWG-0001] Spec changed"
    assert mail["Message-ID"] == "<m@example.net>"
    assert mail["Date"] == "Sun, 01 Mar 2026 12:00:00 +0000"
    text = mail.get_content()
    for expected in ("Anti-virus: off", n.id, "kubectl swg notices acme"):
        assert expected in text


def test_the_notices_command_shows_newest_first_with_the_mail() -> None:
    from swg_operator.commands.notices import render_output

    history = add(History(), notice(key="g1"), ["a@example.com", "b@example.com"], now=NOW)
    later = notice(kind=NoticeKind.INCIDENT, key="r1", at=NOW + datetime.timedelta(hours=1))
    history = add(history, later, ["a@example.com"], now=NOW)
    first = history.entries[0]
    failed = settled(
        claimed(first.deliveries[1], now=NOW, wait=datetime.timedelta(0)),
        now=NOW,
        message="<m>",
        error=MailError("relay refused", permanent=True),
        max_tries=3,
    )
    history = history.replace_entry(first.with_delivery(failed))
    text = render_output(history, "text")
    assert text.index("incident") < text.index("change")
    assert "mail: 1 pending, 1 failed" in text
    assert "failed to b@example.com after 1 tries: relay refused" in text
    records = json.loads(render_output(history, "json", kind="change"))
    assert [r["kind"] for r in records] == ["change"]
    assert records[0]["mail"][1] == {
        "recipient": "b@example.com",
        "state": "failed",
        "tries": 1,
        "messageId": "<m>",
        "lastError": "relay refused",
        "updated": "2026-03-01T12:00:00Z",
    }
    assert render_output(History(), "text") == "No notices.\n"


def test_each_event_is_one_notice_however_often_it_is_recorded() -> None:
    from swg_operator.notices import events

    first = events.change(
        "acme", service_code="S", generation=3, changes=["a\nb", *("x",) * 50], at=NOW
    )
    again = events.change("acme", service_code="S", generation=3, changes=[], at=NOW)
    assert first.id == again.id
    assert first.body[0] == "a b"
    assert len(first.body) == 40
    assert first.body[-1] == "... and 12 more"
    down = events.incident(
        "acme", service_code="S", since="2026-03-01T11:00:00Z", reason="R", message="m", at=NOW
    )
    up = events.recovered("acme", service_code="S", since="2026-03-01T11:30:00Z", at=NOW)
    assert len({first.id, down.id, up.id}) == 3
    with pytest.raises(NoticeError, match=r"attachments\[0\]"):
        Notice(
            kind=NoticeKind.PURGE,
            tenant="acme",
            service_code="S",
            time=format_time(NOW),
            subject="s",
            attachments=(("../etc/passwd", "x"),),
        )
