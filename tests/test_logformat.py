"""The tenant log record format: the directives the data plane uses and the parsers of what
Squid 6.13 and c-icap 0.5 wrote with them (lines captured from the real daemons)."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from logformat_samples import (
    SQUID_CATEGORY_BLOCK,
    SQUID_CLEAN,
    SQUID_CONNECT,
    SQUID_EICAR,
    squid_quote,
)
from swg_logstore import formats, records
from swg_logstore.formats import Decision, MatchedList, SourceKind
from swg_logstore.records import MalformedLineError

# --- the directives ---------------------------------------------------------------------------


def test_squid_directives_define_and_use_the_formats() -> None:
    text = formats.squid_logging_directives(sandbox_service="sandbox_resp")
    assert formats.SQUID_ACCESS_LOGFORMAT in text
    assert formats.SQUID_SANDBOX_LOGFORMAT in text
    assert 'adaptation_meta X-SWG-Request-Id "%tS-%>la-%master_xaction"' in text
    assert (
        "access_log stdio:/var/lib/swg/squid/logs/swg-access.jsonl logformat=swg_access "
        "swg_has_request" in text
    )
    assert "acl swg_sandbox_service adaptation_service sandbox_resp" in text
    assert "icap_log stdio:/var/lib/swg/squid/logs/swg-sandbox.jsonl" in text
    assert "swg_sandbox" not in formats.squid_logging_directives()
    # one directive per line: nothing a template could split
    assert all(line.split()[0] for line in text.splitlines() if line)


def test_squid_access_logformat_is_json_once_macros_are_filled() -> None:
    body = formats.SQUID_ACCESS_LOGFORMAT.split(" ", 2)[2]
    filled = re.sub(r'%"?(\{[^}]*\})?[<>]?[A-Za-z:_<>]+(\{[^}]*\})?', "x", body)
    filled = filled.replace("%ts.%03tu", "1.0").replace("%03tu", "0")
    parsed = json.loads(filled)
    assert parsed["v"] == 1
    for key in ("t", "rid", "icap", "client", "url", "decision", "category", "list", "policy"):
        assert key in parsed


def test_cicap_directives_are_tab_separated_with_the_url_last() -> None:
    text = formats.cicap_logging_directives(service_names=["virus_scan", "avscan"])
    assert formats.CICAP_LOGFORMAT.count("\t") == len(formats.CICAP_FIELDS) - 1
    assert formats.CICAP_FIELDS[-1] == "%huo"
    assert "acl swg_av_service service virus_scan avscan" in text
    assert "AccessLog /var/lib/swg/c-icap/logs/swg-antivirus.log swg_av swg_av_service" in text
    with pytest.raises(ValueError, match="at least one"):
        formats.cicap_logging_directives(service_names=[])
    with pytest.raises(ValueError, match="plain token"):
        formats.cicap_logging_directives(service_names=["a b"])


def test_annotation_of_a_filtering_rule() -> None:
    text = formats.annotation(
        decision=Decision.BLOCK, matched=MatchedList.CATEGORY, category="gambling", policy="tenant"
    )
    assert text == "decision=block list=category category=gambling policy=tenant"
    with pytest.raises(ValueError, match="plain token"):
        formats.annotation(
            decision=Decision.BLOCK, matched=MatchedList.CATEGORY, category="x y", policy="p"
        )


# --- access and urlfilter ---------------------------------------------------------------------


def test_clean_download_gives_one_access_record() -> None:
    (access,) = records.parse_line(SourceKind.SQUID_ACCESS, SQUID_CLEAN)
    assert access["type"] == "access"
    assert access["ts"] == "2026-11-26T16:03:01.149Z"
    assert access["requestId"] == records.request_id("1795708981.145-127.0.0.1-54")
    assert access["id"] == f"{access['requestId']}:access"
    assert access["clientIp"] == "127.0.0.1"
    assert access["user"] is None
    assert (access["method"], access["url"], access["host"]) == (
        "GET",
        "http://clean.test/files/hello.txt",
        "clean.test",
    )
    assert (access["status"], access["bytesOut"], access["bytesIn"], access["durationMs"]) == (
        200,
        275,
        136,
        4,
    )
    assert (access["decision"], access["list"], access["av"]) == ("allow", "default", "clean")
    assert access["avSignature"] is None
    assert access["category"] is None


def test_infected_download_names_the_signature_in_the_access_record() -> None:
    (access,) = records.parse_line(SourceKind.SQUID_ACCESS, SQUID_EICAR)
    assert access["av"] == "infected"
    assert access["avSignature"] == "Custom.Test.EICAR-NDB.UNOFFICIAL"
    assert access["user"] == "alice"
    assert access["status"] == 403


def test_category_block_gives_access_and_urlfilter_records() -> None:
    access, urlfilter = records.parse_line(SourceKind.SQUID_ACCESS, SQUID_CATEGORY_BLOCK)
    assert access["av"] == "not-scanned"
    assert access["error"] == "ERR_BLOCKED_CATEGORY"
    assert urlfilter["type"] == "urlfilter"
    assert urlfilter["requestId"] == access["requestId"]
    assert urlfilter["id"] == f"{access['requestId']}:urlfilter"
    assert (urlfilter["decision"], urlfilter["category"], urlfilter["list"]) == (
        "block",
        "gambling",
        "category",
    )
    assert (urlfilter["policy"], urlfilter["status"], urlfilter["host"]) == (
        "tenant",
        403,
        "www.casino.test",
    )


@pytest.mark.parametrize(
    ("decision", "matched", "expected"),
    [
        ("allow", "default", False),
        ("allow", "-", False),
        ("allow", "allow-domain", True),
        ("block", "deny-regex", True),
        ("bypass", "bypass-domain", True),
        ("allow-noscan", "-", True),  # the trial configuration's spelling of a bypass
        ("-", "-", False),
    ],
)
def test_urlfilter_record_only_when_a_rule_decided(
    decision: str, matched: str, expected: bool
) -> None:
    line = SQUID_CLEAN.replace('"decision":"allow"', f'"decision":"{decision}"').replace(
        '"list":"default"', f'"list":"{matched}"'
    )
    types = [r["type"] for r in records.parse_line(SourceKind.SQUID_ACCESS, line)]
    assert types == (["access", "urlfilter"] if expected else ["access"])


def test_access_control_denial_is_not_a_filter_decision() -> None:
    line = (
        SQUID_CLEAN.replace('"decision":"allow"', '"decision":"-"')
        .replace('"squid":"TCP_MISS"', '"squid":"TCP_DENIED"')
        .replace('"status":"200"', '"status":"403"')
    )
    (access,) = records.parse_line(SourceKind.SQUID_ACCESS, line)
    assert access["decision"] == "deny"


def test_connect_host_and_tls_mode() -> None:
    (access,) = records.parse_line(SourceKind.SQUID_ACCESS, SQUID_CONNECT)
    assert (access["host"], access["tls"], access["sni"]) == ("clean.test", "bump", "clean.test")


def test_missing_numbers_become_null() -> None:
    line = SQUID_CLEAN.replace('"status":"200"', '"status":"-"').replace('"ms":"4"', '"ms":"-"')
    (access,) = records.parse_line(SourceKind.SQUID_ACCESS, line)
    assert access["status"] is None
    assert access["durationMs"] is None


def test_icap_failure_is_an_av_error() -> None:
    line = SQUID_CLEAN.replace('"err":"-"', '"err":"ERR_ICAP_FAILURE"')
    (access,) = records.parse_line(SourceKind.SQUID_ACCESS, line)
    assert access["av"] == "error"


@given(url=st.text(min_size=1, max_size=200), user=st.text(max_size=40))
def test_any_url_and_user_survive_squid_quoting(url: str, user: str) -> None:
    line = SQUID_CLEAN.replace(
        '"url":"http://clean.test/files/hello.txt"', f'"url":"{squid_quote(url)}"'
    ).replace('"user":"-"', f'"user":"{squid_quote(user)}"')
    (access,) = records.parse_line(SourceKind.SQUID_ACCESS, line)
    assert access["url"] == (url if url != "-" else None)
    assert access["user"] == (user if user not in ("", "-") else None)
    assert json.loads(records.encode(access))["url"] == access["url"]


def test_non_utf8_bytes_are_replaced_not_fatal() -> None:
    raw = SQUID_CLEAN.replace("hello.txt", "h\xe9llo.txt").encode("latin-1")
    (access,) = records.parse_line(SourceKind.SQUID_ACCESS, records.decode(raw))
    assert access["url"] == "http://clean.test/files/h\ufffdllo.txt"


def test_record_glued_to_a_fragment_is_recovered() -> None:
    fragment = SQUID_EICAR[: len(SQUID_EICAR) // 2]
    (access,) = records.parse_line(SourceKind.SQUID_ACCESS, fragment + SQUID_CLEAN)
    assert access["url"] == "http://clean.test/files/hello.txt"


@pytest.mark.parametrize(
    "line", ["", "not json", '{"v":2,"t":"1.0"}', '{"v":1,"t":"yesterday"}', "[1,2]"]
)
def test_malformed_squid_lines_are_refused(line: str) -> None:
    with pytest.raises(MalformedLineError):
        records.parse_line(SourceKind.SQUID_ACCESS, line)
