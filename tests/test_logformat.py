"""The tenant log record format: the directives the data plane uses and the parsers of what
Squid 6.13 and c-icap 0.5 wrote with them (lines captured from the real daemons)."""

from __future__ import annotations

import base64
import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from swg_logstore import formats, records
from swg_logstore.formats import Decision, LogType, MatchedList, SourceKind
from swg_logstore.records import MalformedLineError

# Written by Squid 6.13 (trixie) with formats.SQUID_ACCESS_LOGFORMAT.
SQUID_CLEAN = (
    '{"v":1,"t":"1795708981.149","start":"1795708981.145",'
    '"rid":"1795708981.145-127.0.0.1-54","icap":"1795708981.145-127.0.0.1-54",'
    '"client":"127.0.0.1","user":"-","method":"GET","url":"http://clean.test/files/hello.txt",'
    '"status":"200","out":"275","in":"136","ms":"4","squid":"TCP_MISS","hier":"HIER_DIRECT",'
    '"ctype":"application/octet-stream","decision":"allow","category":"-","list":"default",'
    '"policy":"tenant","err":"-","av":"-","sni":"-","bump":"-"}'
)
SQUID_EICAR = (
    '{"v":1,"t":"1795708981.201","start":"1795708981.159",'
    '"rid":"1795708981.159-127.0.0.1-58","icap":"1795708981.159-127.0.0.1-58",'
    '"client":"127.0.0.1","user":"alice","method":"GET","url":"http://clean.test/files/eicar.com",'
    '"status":"403","out":"804","in":"136","ms":"42","squid":"TCP_MISS","hier":"HIER_DIRECT",'
    '"ctype":"text/html","decision":"allow","category":"-","list":"default","policy":"tenant",'
    '"err":"-","av":"Type=0; Resolution=2; Threat=Custom.Test.EICAR-NDB.UNOFFICIAL;",'
    '"sni":"-","bump":"-"}'
)
SQUID_CATEGORY_BLOCK = (
    '{"v":1,"t":"1795708981.213","start":"1795708981.213",'
    '"rid":"1795708981.213-127.0.0.1-61","icap":"-","client":"10.0.0.7","user":"-",'
    '"method":"GET","url":"http://www.casino.test/x?","status":"403","out":"656","in":"138",'
    '"ms":"0","squid":"TCP_DENIED","hier":"HIER_NONE","ctype":"text/html;charset=utf-8",'
    '"decision":"block","category":"gambling","list":"category","policy":"tenant",'
    '"err":"ERR_BLOCKED_CATEGORY","av":"-","sni":"-","bump":"-"}'
)
SQUID_CONNECT = (
    '{"v":1,"t":"1795708981.243","start":"1795708981.233",'
    '"rid":"1795708981.233-127.0.0.1-65","icap":"-","client":"127.0.0.1","user":"-",'
    '"method":"CONNECT","url":"clean.test:443","status":"200","out":"0","in":"112","ms":"9",'
    '"squid":"NONE_NONE","hier":"HIER_DIRECT","ctype":"-","decision":"allow","category":"-",'
    '"list":"default","policy":"tenant","err":"-","av":"-","sni":"clean.test","bump":"bump"}'
)
# Written by c-icap 0.5.10 with formats.CICAP_LOGFORMAT (user name base64 from Squid).
CICAP_OPTIONS = "1795708981\t-\t-\t-\tOPTIONS\t200\t-\t-\t0\t0\t-"
CICAP_CLEAN = (
    "1795708981\t1795708981.145-127.0.0.1-54\t127.0.0.1\t-\tRESPMOD\t204\tpassed\t-\t27\t0\t"
    "http://clean.test/files/hello.txt"
)
CICAP_EICAR = (
    "1795708981\t1795708981.159-127.0.0.1-58\t127.0.0.1\tYWxpY2U=\tRESPMOD\t200\tblocked\t"
    "Custom.Test.EICAR-NDB.UNOFFICIAL\t68\t497\thttp://clean.test/files/eicar.com"
)
CICAP_UPLOAD = (
    "1795708981\t1795708981.304-127.0.0.1-69\t127.0.0.1\t-\tREQMOD\t200\tblocked\t"
    "Custom.Test.EICAR-NDB.UNOFFICIAL\t68\t498\thttp://clean.test/upload/eicar.com"
)
# Written by Squid's icap_log with formats.SQUID_SANDBOX_LOGFORMAT.
SQUID_SANDBOX = (
    '{"v":1,"t":"1795709020.282","icap":"1795708981.145-127.0.0.1-54","client":"127.0.0.1",'
    '"user":"-","method":"GET","url":"http://clean.test/files/hello.txt",'
    '"service":"sandbox_resp","icapMethod":"RESPMOD","icapStatus":"204","ms":"2",'
    '"threat":"-","violations":"-"}'
)

ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def squid_quote(text: str) -> str:
    """Squid's %" encoding: quote and backslash escaped, CR LF TAB as two characters."""
    out = text.replace("\\", "\\\\").replace('"', '\\"')
    return out.replace("\r", "\\r").replace("\n", "\\n").replace("\t", "\\t")


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


# --- antivirus --------------------------------------------------------------------------------


def test_options_lines_give_no_record() -> None:
    assert records.parse_line(SourceKind.CICAP_ANTIVIRUS, CICAP_OPTIONS) == []


def test_clean_scan() -> None:
    (record,) = records.parse_line(SourceKind.CICAP_ANTIVIRUS, CICAP_CLEAN)
    assert record == {
        "ts": "2026-11-26T16:03:01.000Z",
        "type": "antivirus",
        "id": f"{records.request_id('1795708981.145-127.0.0.1-54')}:antivirus:download",
        "requestId": records.request_id("1795708981.145-127.0.0.1-54"),
        "clientIp": "127.0.0.1",
        "user": None,
        "url": "http://clean.test/files/hello.txt",
        "host": "clean.test",
        "direction": "download",
        "verdict": "clean",
        "signature": None,
        "bytesScanned": 27,
        "icapStatus": 204,
    }


def test_infected_scan_links_to_the_access_record() -> None:
    (av,) = records.parse_line(SourceKind.CICAP_ANTIVIRUS, CICAP_EICAR)
    (access,) = records.parse_line(SourceKind.SQUID_ACCESS, SQUID_EICAR)
    assert av["requestId"] == access["requestId"]
    assert (av["verdict"], av["signature"]) == ("infected", "Custom.Test.EICAR-NDB.UNOFFICIAL")
    assert av["user"] == "alice"


def test_upload_scan_direction() -> None:
    (av,) = records.parse_line(SourceKind.CICAP_ANTIVIRUS, CICAP_UPLOAD)
    assert (av["direction"], av["verdict"]) == ("upload", "infected")


def test_user_name_is_decoded_from_base64() -> None:
    encoded = base64.b64encode("山田 太郎".encode()).decode()
    (av,) = records.parse_line(
        SourceKind.CICAP_ANTIVIRUS, CICAP_CLEAN.replace("127.0.0.1\t-", f"127.0.0.1\t{encoded}")
    )
    assert av["user"] == "山田 太郎"


def test_url_with_tabs_and_spaces_stays_whole() -> None:
    (av,) = records.parse_line(SourceKind.CICAP_ANTIVIRUS, CICAP_CLEAN + "?a b\tc")
    assert av["url"] == "http://clean.test/files/hello.txt?a b\tc"


@pytest.mark.parametrize("line", ["", "1\t2\t3", "x\t-\t-\t-\tRESPMOD\t204\tpassed\t-\t1\t0\tu"])
def test_malformed_cicap_lines_are_refused(line: str) -> None:
    with pytest.raises(MalformedLineError):
        records.parse_line(SourceKind.CICAP_ANTIVIRUS, line)


# --- sandbox ----------------------------------------------------------------------------------


def test_sandbox_clean_and_malicious() -> None:
    (clean,) = records.parse_line(SourceKind.SQUID_SANDBOX, SQUID_SANDBOX)
    assert (clean["type"], clean["verdict"], clean["direction"]) == ("sandbox", "clean", "download")
    assert clean["requestId"] == records.request_id("1795708981.145-127.0.0.1-54")
    bad = SQUID_SANDBOX.replace('"icapStatus":"204"', '"icapStatus":"200"').replace(
        '"threat":"-"', '"threat":"Type=0; Resolution=2; Threat=Sandbox.Dropper.X;"'
    )
    (malicious,) = records.parse_line(SourceKind.SQUID_SANDBOX, bad)
    assert (malicious["verdict"], malicious["threat"]) == ("malicious", "Sandbox.Dropper.X")
    violations = SQUID_SANDBOX.replace('"icapStatus":"204"', '"icapStatus":"200"').replace(
        '"violations":"-"', '"violations":"1\\\\nfile.exe\\\\nSandbox.Trojan.Y\\\\n0"'
    )
    (violated,) = records.parse_line(SourceKind.SQUID_SANDBOX, violations)
    assert violated["threat"] == "Sandbox.Trojan.Y"
    down = SQUID_SANDBOX.replace('"icapStatus":"204"', '"icapStatus":"0"')
    assert records.parse_line(SourceKind.SQUID_SANDBOX, down)[0]["verdict"] == "error"


# --- the stored shape -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "line"),
    [
        (SourceKind.SQUID_ACCESS, SQUID_CATEGORY_BLOCK),
        (SourceKind.CICAP_ANTIVIRUS, CICAP_EICAR),
        (SourceKind.SQUID_SANDBOX, SQUID_SANDBOX),
    ],
)
def test_finalised_records_start_with_the_common_keys(kind: SourceKind, line: str) -> None:
    for record in records.parse_line(kind, line):
        final = records.finalise(record, tenant="acme", service_code="SWG-0001234")
        assert list(final)[:6] == list(records.HEAD_KEYS)
        assert (final["tenant"], final["serviceCode"]) == ("acme", "SWG-0001234")
        assert ISO_MS.match(str(final["ts"]))
        assert final["type"] in {t.value for t in LogType}
        encoded = records.encode(final)
        assert encoded.endswith(b"\n")
        assert encoded.count(b"\n") == 1
        assert records.validate(json.loads(encoded)) == final


def test_finalise_overrides_what_the_sender_claimed() -> None:
    (access,) = records.parse_line(SourceKind.SQUID_ACCESS, SQUID_CLEAN)
    final = records.finalise({**access, "tenant": "other"}, tenant="acme", service_code="S-1")
    assert final["tenant"] == "acme"


@pytest.mark.parametrize(
    ("epoch", "iso"),
    [
        (0, "1970-01-01T00:00:00.000Z"),
        (1795708981149, "2026-11-26T16:03:01.149Z"),
        (1798761599999, "2026-12-31T23:59:59.999Z"),
    ],
)
def test_iso_timestamps_with_milliseconds(epoch: int, iso: str) -> None:
    assert records.iso_ms(epoch) == iso
    assert records.epoch_ms(f"{epoch // 1000}.{epoch % 1000:03d}") == epoch


def test_request_id_is_a_stable_digest() -> None:
    assert records.request_id("-") is None
    rid = records.request_id("1795708981.145-10.244.1.7-54")
    assert rid is not None
    assert re.fullmatch(r"[0-9a-f]{20}", rid)
    assert "10.244" not in rid
    assert rid == records.request_id("1795708981.145-10.244.1.7-54")


@pytest.mark.parametrize(
    "record",
    [
        {"type": "access"},
        {"type": "nope", "ts": "2026-11-26T00:00:00.000Z"},
        {"type": "access", "ts": "2026-11-26T00:00:00.000Z", "x": {"nested": 1}},
    ],
)
def test_validate_refuses_records_of_the_wrong_shape(record: dict[str, object]) -> None:
    with pytest.raises(MalformedLineError):
        records.validate(record)


@pytest.mark.parametrize(
    ("notes", "expected"),
    [
        (("allow", "allow-list", "-"), ("allow", "allow-domain", None, True)),
        (("block", "deny-list", "-"), ("block", "deny-domain", None, True)),
        (("block", "deny-regex", "-"), ("block", "deny-regex", None, True)),
        (("allow-noscan", "bypass", "-"), ("bypass", "bypass-domain", None, True)),
        (("block", "restricted-destination", "-"), ("block", "restricted", None, True)),
        (("block", "gambling", "-"), ("block", "category", "gambling", True)),
        (("allow", "uncategorized", "-"), ("allow", "default", None, False)),
        (("block", "gambling", "category"), ("block", "category", "gambling", True)),
    ],
)
def test_template_annotation_spellings(
    notes: tuple[str, str, str], expected: tuple[str, str, str | None, bool]
) -> None:
    """The data-plane templates' annotations (category names a list when no `list` is set)."""
    decision, category, matched = notes
    line = (
        SQUID_CLEAN.replace('"decision":"allow"', f'"decision":"{decision}"')
        .replace('"category":"-"', f'"category":"{category}"')
        .replace('"list":"default"', f'"list":"{matched}"')
        .replace('"policy":"tenant"', '"policy":"-"')
    )
    produced = records.parse_line(SourceKind.SQUID_ACCESS, line)
    access = produced[0]
    assert (access["decision"], access["list"], access["category"]) == expected[:3]
    assert access["policy"] == "tenant"
    assert (len(produced) == 2) is expected[3]


@pytest.mark.parametrize(
    ("threat", "verdict"),
    [
        ("Heuristics.Limits.Exceeded.MaxFileSize", "over-limit"),
        ("Heuristics.Limits.Exceeded.MaxScanSize", "over-limit"),
        ("Heuristics.Encrypted.Zip", "encrypted"),
        ("Heuristics.Encrypted.PDF", "encrypted"),
    ],
)
def test_what_clamd_could_not_scan_is_not_called_infected_or_clean(
    threat: str, verdict: str
) -> None:
    """clamd reports an object over its limits or encrypted as a heuristic detection and
    c-icap blocks it: the records say why (`over-limit`, `encrypted`), with clamd's name."""
    av_line = CICAP_EICAR.replace("Custom.Test.EICAR-NDB.UNOFFICIAL", threat)
    (av,) = records.parse_line(SourceKind.CICAP_ANTIVIRUS, av_line)
    assert (av["verdict"], av["signature"]) == (verdict, threat)
    access_line = SQUID_EICAR.replace("Custom.Test.EICAR-NDB.UNOFFICIAL", threat)
    (access,) = records.parse_line(SourceKind.SQUID_ACCESS, access_line)
    assert (access["av"], access["avSignature"]) == (verdict, threat)
