"""The chart's values for notices' mail and signed receipts reach the operator's settings, its
NetworkPolicy and the published public key; bad values are refused by the schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from chart_support import (
    RELEASE,
    by_kind,
    helm_template,
    one,
    render,
)
from swg_operator.api import OperatorSettings
from swg_operator.receipts import PUBLISHED_KEY_FIELD, key_id, load_public_key, public_key_pem

MAIL = {
    "notices.mail.host": "smtp.provider.example",
    "notices.mail.port": "2587",
    "notices.mail.from": "noc@provider.example",
    "notices.mail.credentialsSecret": "smtp-relay",
    "notices.mail.cidrs[0]": "192.0.2.25/32",
}


def settings(docs: list[dict[str, Any]]) -> OperatorSettings:
    (config_map,) = [
        d for d in by_kind(docs, "ConfigMap") if d["metadata"]["name"].endswith("-settings")
    ]
    return OperatorSettings.model_validate_json(config_map["data"]["settings.json"])


def test_no_relay_by_default_and_no_mail_egress() -> None:
    docs = render()
    assert settings(docs).mail == OperatorSettings().mail
    assert settings(docs).receipts == OperatorSettings().receipts
    assert len(one(docs, "NetworkPolicy")["spec"]["egress"]) == 2  # API server, DNS


def test_relay_values_reach_the_settings_and_the_network_policy() -> None:
    docs = render(MAIL)
    mail = settings(docs).mail
    assert (mail.host, mail.port, mail.sender) == (
        "smtp.provider.example",
        2587,
        "noc@provider.example",
    )
    assert (mail.starttls, mail.credentials_secret) == (True, "smtp-relay")
    relay = one(docs, "NetworkPolicy")["spec"]["egress"][-1]
    assert relay == {
        "ports": [{"port": 2587, "protocol": "TCP"}],
        "to": [{"ipBlock": {"cidr": "192.0.2.25/32"}}],
    }


def test_the_public_key_is_published_when_given(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    values = tmp_path / "values.yaml"
    values.write_text(
        yaml.safe_dump({"receipts": {"publicKey": public_key_pem(key.public_key()).decode()}})
    )
    text = helm_template("-f", str(values)).stdout
    docs = [d for d in yaml.safe_load_all(text) if d]
    (published,) = [
        d
        for d in by_kind(docs, "ConfigMap")
        if d["metadata"]["name"] == f"{RELEASE}-swg-operator-receipt-public-key"
    ]
    loaded = load_public_key(yaml.safe_dump(published).encode(), where="chart")
    assert key_id(loaded) == key_id(key.public_key())
    assert published["data"][PUBLISHED_KEY_FIELD].startswith("-----BEGIN PUBLIC KEY-----")
    assert not [d for d in by_kind(render(), "ConfigMap") if "receipt" in d["metadata"]["name"]]


@pytest.mark.parametrize(
    "values",
    [
        {"notices.mail.from": "not an address"},
        {"notices.mail.host": "smtp relay"},
        {"notices.mail.port": "0"},
        {"notices.mail.cidrs[0]": "relay.example"},
        {"receipts.publicKey": "hello"},
        {"notices.mail.tls": "true"},
    ],
)
def test_bad_notice_and_receipt_values_are_refused(values: dict[str, str]) -> None:
    args = [a for k, v in values.items() for a in ("--set", f"{k}={v}")]
    result = helm_template(*args, check=False)
    assert result.returncode != 0
    assert "values don't meet the specifications of the schema" in result.stderr, result.stderr
