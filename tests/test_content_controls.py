"""spec.contentControls and options.sandbox: validation naming the field, and what they render
(the data-plane tier runs the same files: e2e/dataplane/test_content_controls.py,
e2e/dataplane/test_sandbox.py)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from render_support import dataplane_files
from swg_operator.api import OperatorSettings, parse_spec
from swg_operator.api.content import ContentControls
from swg_operator.api.resource import SpecError
from swg_operator.catalogue import Catalogue
from swg_operator.render.content import (
    BUILTIN_SIGNATURES,
    FILE_TYPE_SIGNATURES,
    file_type_signatures,
    parameter_is,
    parameter_other_than,
)

SETTINGS = OperatorSettings()
SANDBOX_URL = "icaps://sandbox.analysis.example:11344/respmod"


def raw_spec(**overrides: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "serviceCode": "SWG-0000042",
        "sizing": {"endpoints": 10, "requestsPerSecond": 10},
        "clients": {"allowedCIDRs": ["198.51.100.0/24"]},
    }
    raw.update(overrides)
    return raw


def files(**overrides: Any) -> dict[str, str]:
    return dataplane_files(
        parse_spec(raw_spec(**overrides)), catalogue=Catalogue.of([]), settings=SETTINGS
    )


def refused(**overrides: Any) -> str:
    with pytest.raises(SpecError) as error:
        parse_spec(raw_spec(**overrides))
    return str(error.value)


INSPECTION = {"httpsInspection": {"enabled": True}}


# --- validation ------------------------------------------------------------------------------
def test_file_types_need_the_scanner() -> None:
    message = refused(
        antivirus={"enabled": False}, contentControls={"fileTypes": {"blocked": ["executable"]}}
    )
    assert "contentControls.fileTypes" in message
    assert "antivirus.enabled" in message


def test_safe_search_needs_inspection() -> None:
    message = refused(contentControls={"safeSearch": {"enabled": True}})
    assert "contentControls.safeSearch.enabled" in message
    assert "options.httpsInspection.enabled" in message
    parse_spec(raw_spec(contentControls={"safeSearch": {"enabled": True}}, options=INSPECTION))


CUSTOM = "spec.contentControls.fileTypes.custom[0]"


def _custom(**entry: object) -> dict[str, Any]:
    return {"custom": [{"name": "x", "magic": "4d5a", **entry}]}


@pytest.mark.parametrize(
    ("file_types", "field"),
    [
        ({"blocked": ["exe"]}, "spec.contentControls.fileTypes.blocked[0]"),
        ({"blocked": ["pdf", "pdf"]}, "contentControls.fileTypes.blocked: duplicate"),
        (_custom(magic="4d5"), f"{CUSTOM}.magic"),
        (_custom(magic="4D5A"), f"{CUSTOM}.magic"),
        (_custom(magic="4d"), f"{CUSTOM}.magic"),
        (_custom(magic="4d5a:0"), f"{CUSTOM}.magic"),
        (_custom(name="Bad_Name"), f"{CUSTOM}.name"),
        (_custom(offset=-1), f"{CUSTOM}.offset"),
        (_custom(offset=65537), f"{CUSTOM}.offset"),
        (
            {"custom": [{"name": "x", "magic": "4d5a"}, {"name": "x", "magic": "7f45"}]},
            "contentControls.fileTypes.custom[].name: duplicate",
        ),
    ],
)
def test_bad_file_types_are_refused_naming_the_field(
    file_types: dict[str, Any], field: str
) -> None:
    assert field in refused(contentControls={"fileTypes": file_types})


def test_youtube_restriction_is_one_of_the_documented_values() -> None:
    message = refused(
        contentControls={"safeSearch": {"enabled": True, "youtube": "strict"}}, options=INSPECTION
    )
    assert "spec.contentControls.safeSearch.youtube" in message


def test_sandbox_fail_open_defaults_to_closed() -> None:
    spec = parse_spec(raw_spec(options={"sandbox": {"enabled": True, "icapURL": SANDBOX_URL}}))
    assert spec.options.sandbox.fail_open is False
    message = refused(
        options={"sandbox": {"enabled": True, "icapURL": SANDBOX_URL, "failOpen": "maybe"}}
    )
    assert "spec.options.sandbox.failOpen" in message


# --- file types --------------------------------------------------------------------------------
def test_signature_file_only_when_a_type_is_blocked() -> None:
    assert FILE_TYPE_SIGNATURES not in files()
    rendered = files(
        contentControls={
            "fileTypes": {
                "blocked": ["pdf", "executable"],
                "custom": [{"name": "acme-db", "magic": "41434d45", "offset": 16}],
            }
        }
    )
    lines = rendered[FILE_TYPE_SIGNATURES].splitlines()
    assert "SWG.FileType.Executable.ELF:6:0:7f454c46" in lines
    assert "SWG.FileType.PDF:0:0:255044462d" in lines
    assert lines[-1] == "SWG.FileType.Custom.acme-db:0:16:41434d45"


def test_every_builtin_signature_is_a_valid_ndb_line() -> None:
    ndb = re.compile(
        r"SWG\.FileType\.[A-Za-z0-9.-]+:(0|1|6|9):[0-9]+:"
        r"([0-9a-f]{6,}|[0-9a-f]{4,}\*[0-9a-f]{4,})"
    )
    for file_type in BUILTIN_SIGNATURES:
        controls = ContentControls.model_validate({"fileTypes": {"blocked": [file_type]}})
        for line in file_type_signatures(controls).splitlines():
            # clamd refuses a pattern under 3 bytes ("too short") and the whole database with it
            assert ndb.fullmatch(line), line


# --- SafeSearch --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("query", "on", "other"),
    [
        ("?q=a", False, False),
        ("?q=a&safe=active", True, False),
        ("?safe=active&q=a", True, False),
        ("?q=a&safe=off", False, True),
        ("?q=a&safe=", False, True),
        ("?q=a&safe=activ", False, True),
        ("?q=a&safe=activex", False, True),
        ("?q=a&safe=active&safe=off", True, True),
        ("?q=a&unsafe=off", False, False),
        ("?q=a&xsafe=active", False, False),
    ],
)
def test_parameter_regexes(query: str, on: bool, other: bool) -> None:
    # The patterns use only POSIX ERE syntax that Python's re reads the same way.
    assert bool(re.search(parameter_is("safe", "active"), query)) is on
    assert bool(re.search(parameter_other_than("safe", "active"), query)) is other


def test_safe_search_lines_only_when_enabled() -> None:
    assert "swg_safesearch" not in files(options=INSPECTION)["squid.conf"]
    conf = files(
        options=INSPECTION, contentControls={"safeSearch": {"enabled": True, "youtube": "Moderate"}}
    )["squid.conf"]
    assert "request_header_add YouTube-Restrict Moderate swg_safesearch_youtube" in conf
    assert "request_header_access YouTube-Restrict deny swg_safesearch_youtube" in conf
    # before the tenant's own allow rules
    lines = conf.splitlines()
    first_safe = next(
        i
        for i, line in enumerate(lines)
        if line.startswith("http_access") and "swg_safesearch_google_refuse" in line
    )
    default_allow = lines.index("http_access allow swg_clients swg_tag_default")
    assert first_safe < default_allow
    off = files(
        options=INSPECTION, contentControls={"safeSearch": {"enabled": True, "youtube": "Off"}}
    )["squid.conf"]
    assert "YouTube-Restrict" not in off


# --- sandbox -------------------------------------------------------------------------------------
def _icap_lines(conf: str) -> list[str]:
    starts = ("icap_service ", "adaptation_access", "adaptation_service_chain")
    return [line for line in conf.splitlines() if line.startswith(starts)]


def test_sandbox_without_antivirus_is_the_only_response_service() -> None:
    conf = files(
        antivirus={"enabled": False}, options={"sandbox": {"enabled": True, "icapURL": SANDBOX_URL}}
    )["squid.conf"]
    assert "icap_enable on" in conf
    assert _icap_lines(conf) == [
        f"icap_service swg_sandbox_resp respmod_precache bypass=off routing=off {SANDBOX_URL}",
        "adaptation_access swg_sandbox_resp allow all",
    ]
    assert "icap_log stdio:" in conf


def test_sandbox_after_antivirus_and_its_own_failure_policy() -> None:
    conf = files(
        antivirus={"failOpen": False},
        options={"sandbox": {"enabled": True, "icapURL": SANDBOX_URL, "failOpen": True}},
    )["squid.conf"]
    icap = _icap_lines(conf)
    assert "icap_service swg_av_resp respmod_precache bypass=off routing=off" in " ".join(icap)
    assert (
        f"icap_service swg_sandbox_resp respmod_precache bypass=on routing=off {SANDBOX_URL}"
        in icap
    )
    assert "adaptation_service_chain swg_resp_chain swg_av_resp swg_sandbox_resp" in icap


def test_no_icap_without_antivirus_or_sandbox() -> None:
    assert "icap_enable" not in files(antivirus={"enabled": False})["squid.conf"]
