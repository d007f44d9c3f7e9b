"""The tenant log record format, continued (test_logformat.py has the directives and the
access and urlfilter records): c-icap's antivirus and sandbox lines, and the stored shape every
record takes once finalised."""

from __future__ import annotations

import base64
import json
import re

import pytest

from logformat_samples import (
    CICAP_CLEAN,
    CICAP_EICAR,
    CICAP_OPTIONS,
    CICAP_UPLOAD,
    ISO_MS,
    SQUID_CATEGORY_BLOCK,
    SQUID_CLEAN,
    SQUID_EICAR,
    SQUID_SANDBOX,
)
from swg_logstore import records
from swg_logstore.formats import LogType, SourceKind
from swg_logstore.records import MalformedLineError

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
    parsed = records.parse_line(kind, line)
    assert parsed, line
    for record in parsed:
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
