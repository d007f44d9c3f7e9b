"""The admins' view of their contract (render/contract_view.py), mirrored into `tenant-status`
and printed by `kubectl swg status`: what the operator applies, from the spec, and never a secret
or anyone's identity."""

from __future__ import annotations

import json
from typing import Any

import pytest

from render_support import example_spec, minimal_spec
from swg_operator.api import SecureWebGatewayStatus, parse_spec
from swg_operator.commands.status import format_text, render_output
from swg_operator.render.contract_view import contract_view, format_contract
from swg_operator.render.status_mirror import read_status_data, status_data


def _full() -> dict[str, Any]:
    return contract_view(parse_spec(example_spec("full")[1]))


def test_the_full_example_as_its_admins_see_it() -> None:
    assert _full() == {
        "serviceCode": "SWG-0001234",
        "sizing": {"endpoints": 2500, "requestsPerSecond": 1200},
        "clients": {"allowedCIDRs": 3},
        "filtering": {
            "blockedCategories": ["adult", "gambling", "malware", "phishing"],
            "allowDomains": 2,
            "denyDomains": 1,
            "denyUrlRegex": 1,
            "policies": [
                {
                    "name": "contractors",
                    "sourceCIDRs": ["203.0.113.0/26"],
                    "groups": [],
                    "blockedCategories": ["social-networks"],
                    "allowDomains": 0,
                    "denyDomains": 1,
                    "denyUrlRegex": 0,
                },
                {
                    "name": "research",
                    "sourceCIDRs": ["198.51.100.128/25"],
                    "groups": [],
                    "blockedCategories": [],
                    "allowDomains": 1,
                    "denyDomains": 0,
                    "denyUrlRegex": 0,
                },
                {
                    "name": "finance",
                    "sourceCIDRs": [],
                    "groups": ["finance"],
                    "blockedCategories": [],
                    "allowDomains": 1,
                    "denyDomains": 0,
                    "denyUrlRegex": 0,
                },
            ],
        },
        "contentControls": {
            "blockedFileTypes": ["executable", "ole2"],
            "customFileTypes": ["example-corp-ledger"],
            "safeSearch": {"enabled": True, "youtube": "Moderate"},
        },
        "access": {
            "hostname": "proxy.example-corp.example",
            "tls": {
                "enabled": True,
                "port": 3129,
                "plaintext": True,
                "customerCertificate": True,
            },
            "pac": {"enabled": True},
        },
        "options": {
            "antivirus": {
                "enabled": True,
                "maxScanSize": "100Mi",
                "failOpen": False,
                "customSignatures": True,
            },
            "httpsInspection": {
                "enabled": True,
                "doNotInspectDomains": 1,
                "doNotInspectCategories": ["malware"],
                "customerCA": True,
            },
            "sandbox": {"enabled": True},
            "bypass": {"domains": 1, "CIDRs": 1},
        },
        "logs": {
            "retentionDays": 60,
            "timeZone": "Asia/Tokyo",
            "storageSize": "200Gi",
            "storageClassName": "(cluster default)",
        },
        "region": "region-local",
        "suspended": False,
    }


def test_the_minimal_example_shows_the_defaults_it_runs_with() -> None:
    view = contract_view(parse_spec(minimal_spec()))
    assert view["region"] == "(any)"
    assert view["logs"] == {
        "retentionDays": 90,
        "timeZone": "UTC",
        "storageSize": "auto",  # sized from the load: status.sizing.logStorage
        "storageClassName": "(cluster default)",
    }
    assert view["options"]["antivirus"]["enabled"] is True
    assert view["options"]["antivirus"]["failOpen"] is False
    assert view["options"]["httpsInspection"]["enabled"] is False
    assert view["filtering"]["policies"] == []
    assert view["access"]["hostname"] == "(none)"


@pytest.mark.parametrize(
    "secret",
    [
        "secops@example-corp.example",  # contacts
        "alice@example-corp.example",  # admins
        "example-corp:swg-admins",
        "sandbox.analysis.example",  # the sandbox URL may carry credentials
        "example-corp-inspection-ca",  # the CA Secret's name
        "example-corp-signatures",
        "45434c4544474552",  # a custom file type's magic bytes
        "partner.example",  # list entries are counted, not listed
        "tracker",
    ],
)
def test_no_secret_identity_or_list_entry_is_in_the_view(secret: str) -> None:
    assert secret not in json.dumps(_full())


def test_the_view_changes_with_the_spec_it_is_made_from() -> None:
    _, raw = example_spec("full")
    changed = {**raw, "suspended": True, "logs": {**raw["logs"], "retentionDays": 30}}
    view = contract_view(parse_spec(changed))
    assert (view["suspended"], view["logs"]["retentionDays"]) == (True, 30)


def test_format_contract_prints_each_option_and_policy() -> None:
    text = "\n".join(format_contract(_full()))
    for expected in (
        "Service code:        SWG-0001234",
        "Sizing:              2500 endpoints, 1200 requests/s",
        "Region:              region-local",
        "60 days including today, days in Asia/Tokyo; volume 200Gi",
        "Anti-virus:          on, scan limit 100Mi, fail closed, custom signatures",
        "HTTPS inspection:    on (not inspected: 1 domain(s), categories malware; customer CA)",
        "Sandbox:             on",
        "categories adult, gambling, malware, phishing; 2 allowed domain(s), 1 denied",
        "File types blocked:  executable, ole2, example-corp-ledger",
        "SafeSearch:          on (YouTube Moderate)",
        "hostname proxy.example-corp.example; TLS listener on (port 3129, customer certificate); "
        "PAC file on",
        "Policy contractors: networks 203.0.113.0/26; groups (any); categories social-networks",
        "Policy finance: networks (any); groups finance; categories (none)",
        "Policy research: networks 198.51.100.128/25; groups (any); categories (none)",
    ):
        assert expected in text


def test_format_contract_of_an_older_mirror_claims_nothing_it_does_not_hold() -> None:
    """A mirror written before a key existed prints '?' or leaves the line out."""
    view = _full()
    del view["contentControls"], view["access"]
    view.pop("serviceCode")
    text = "\n".join(format_contract(view))
    assert "Service code:        ?" in text
    assert "SafeSearch" not in text
    assert "Access:" not in text


def test_the_contract_travels_through_the_mirror_to_kubectl_swg_status() -> None:
    spec = parse_spec(example_spec("full")[1])
    data = status_data("example-corp", SecureWebGatewayStatus(phase="Ready"), spec)
    status = read_status_data(data)
    assert status["contract"] == contract_view(spec)
    assert json.loads(render_output(status, "json"))["contract"]["serviceCode"] == "SWG-0001234"
    assert "Contract:" in format_text(status)
    # An invalid spec mirrors no contract; a damaged one is not shown.
    assert "contract" not in status_data("x", SecureWebGatewayStatus(phase="Degraded"))
    assert "contract" not in read_status_data({**data, "contract": "{not json"})
    assert "Contract:" not in format_text(read_status_data({**data, "contract": "[1]"}))
