"""Signed purge receipts: sign, verify, tamper, wrong key, the file a customer is given, the
command that checks it offline, and the operator's signing key kept in a Secret."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fakes import FakeKube
from swg_operator.cli import main
from swg_operator.receipts import (
    DIGESTS_KEY,
    KEY_ID_KEY,
    PUBLISHED_KEY_FIELD,
    SIGNATURE_KEY,
    ReceiptError,
    canonical,
    key_id,
    load_public_key,
    public_key_pem,
    read_receipt,
    sign_receipt,
    signing_key,
    verify_receipt,
)

# The fields the purge writes into a receipt ConfigMap (reconcile.purge._write_receipt).
RECEIPT = {
    "tenant": "acme",
    "tenantUID": "0b6f7c1e-4d0a-4f8e-9c53-2f3d1e5a7b90",
    "serviceCode": "SWG-0001",
    "cancelledAt": "2026-01-01T12:00:00Z",
    "purgeAt": "2026-01-31T12:00:00Z",
    "startedAt": "2026-01-31T12:00:05Z",
    "completedAt": "2026-01-31T12:01:10Z",
    "state": "Completed",
    "operatorVersion": "0.1.0",
    "clockMode": "server",
    "deleted": "namespace swg-acme and everything in it; PersistentVolume pv-1 (reclaim policy "
    "Delete)",
    "volumes": '["pv-1"]',
    "inventory.json": json.dumps(
        ["ConfigMap/swg-acme/proxy-config", "Namespace/swg-acme", "PersistentVolume/pv-1"],
        indent=1,
    ),
}
KEY = Ed25519PrivateKey.generate()


def test_a_signed_receipt_verifies() -> None:
    signed = sign_receipt(RECEIPT, KEY)
    verdict = verify_receipt(signed, KEY.public_key())
    assert verdict.valid, verdict.problems
    assert verdict.key_id == signed[KEY_ID_KEY] == key_id(KEY.public_key())
    assert {k: signed[k] for k in RECEIPT} == RECEIPT  # the receipt's own fields unchanged
    assert sign_receipt(signed, KEY) == signed  # re-signing replaces, never nests


def test_non_ascii_text_is_signed_as_is() -> None:
    receipt = {**RECEIPT, "deleted": "名前空間 swg-acme, ümlaut"}
    assert verify_receipt(sign_receipt(receipt, KEY), KEY.public_key()).valid


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda r: r.update(completedAt="2026-03-01T00:00:00Z"), "field completedAt was changed"),
        (lambda r: r.update({"inventory.json": "[]"}), "field inventory.json was changed"),
        (lambda r: r.pop("deleted"), "field deleted was removed"),
        (lambda r: r.update(note="all fine"), "field note was added"),
        (lambda r: r.update({DIGESTS_KEY: r[DIGESTS_KEY].replace("a", "b", 1)}), "digests"),
        (lambda r: r.pop(SIGNATURE_KEY), "not signed"),
        (lambda r: r.update({SIGNATURE_KEY: "***"}), "damaged"),
    ],
)
def test_a_tampered_receipt_fails_naming_what_changed(change: Any, problem: str) -> None:
    signed = sign_receipt(RECEIPT, KEY)
    change(signed)
    verdict = verify_receipt(signed, KEY.public_key())
    assert not verdict.valid
    assert any(problem in p for p in verdict.problems), verdict.problems


def test_another_key_fails() -> None:
    other = Ed25519PrivateKey.generate()
    verdict = verify_receipt(sign_receipt(RECEIPT, other), KEY.public_key())
    assert verdict.problems == (
        f"signed with key {key_id(other.public_key())}, not with the given public key "
        f"{key_id(KEY.public_key())}: another operator's key, or the wrong public key file",
    )
    # A forger who claims our key id: the signature check catches it.
    forged = sign_receipt(RECEIPT, other)
    forged[KEY_ID_KEY] = key_id(KEY.public_key())
    assert "the signature does not match" in verify_receipt(forged, KEY.public_key()).problems[0]


def test_the_signature_is_over_the_canonical_digests() -> None:
    signed = sign_receipt(RECEIPT, KEY)
    digests = json.loads(signed[DIGESTS_KEY])
    assert list(digests) == sorted(RECEIPT)
    message = canonical(digests, key=signed[KEY_ID_KEY])
    assert message.startswith(b'{"algorithm":"Ed25519","digests":{"cancelledAt":"')
    import base64

    KEY.public_key().verify(base64.b64decode(signed[SIGNATURE_KEY]), message)


def kubectl_yaml(data: dict[str, str]) -> str:
    """The receipt as `kubectl get configmap -n swg-system purge-acme-0b6f7c1e -o yaml`."""
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "data": data,
            "kind": "ConfigMap",
            "metadata": {
                "creationTimestamp": "2026-01-31T12:00:05Z",
                "labels": {"app.kubernetes.io/managed-by": "swg-operator"},
                "name": "purge-acme-0b6f7c1e",
                "namespace": "swg-system",
                "resourceVersion": "4711",
                "uid": "9d0c1f7e-0000-4000-8000-000000000001",
            },
        },
        allow_unicode=True,
    )


def test_a_receipt_file_from_kubectl_verifies(tmp_path: Path, capsys: Any) -> None:
    receipt = tmp_path / "receipt.yaml"
    receipt.write_text(kubectl_yaml(sign_receipt(RECEIPT, KEY)))
    key = tmp_path / "key.pem"
    key.write_bytes(public_key_pem(KEY.public_key()))
    assert main(["receipt", "verify", str(receipt), "--public-key", str(key)]) == 0
    out = capsys.readouterr().out
    kid = key_id(KEY.public_key())
    assert out == f"valid: receipt of tenant acme (Completed), signed with key {kid}\n"
    # The chart's ConfigMap as the key file; the receipt as JSON, as a List, as bare data.
    chart = tmp_path / "chart-key.yaml"
    chart.write_text(
        yaml.safe_dump(
            {
                "kind": "ConfigMap",
                "data": {PUBLISHED_KEY_FIELD: public_key_pem(KEY.public_key()).decode()},
            }
        )
    )
    as_list = tmp_path / "list.yaml"
    as_list.write_text(
        yaml.safe_dump({"kind": "List", "items": [yaml.safe_load(receipt.read_text())]})
    )
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps(sign_receipt(RECEIPT, KEY)))
    for path in (receipt, as_list, bare):
        assert main(["receipt", "verify", str(path), "--public-key", str(chart)]) == 0


def test_a_tampered_file_exits_1_naming_the_field(
    tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    signed = sign_receipt(RECEIPT, KEY)
    signed["completedAt"] = "2026-02-28T00:00:00Z"
    receipt = tmp_path / "receipt.yaml"
    receipt.write_text(kubectl_yaml(signed))
    key = tmp_path / "key.pem"
    key.write_bytes(public_key_pem(KEY.public_key()))
    monkeypatch.setenv("SWG_RECEIPT_PUBLIC_KEY", str(key))
    assert main(["receipt", "verify", str(receipt)]) == 1
    err = capsys.readouterr().err
    assert "invalid: receipt of tenant acme" in err
    assert "field completedAt was changed after signing" in err


def test_unreadable_files_exit_2(
    tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SWG_RECEIPT_PUBLIC_KEY", raising=False)
    receipt = tmp_path / "receipt.yaml"
    receipt.write_text(kubectl_yaml(sign_receipt(RECEIPT, KEY)))
    assert main(["receipt", "verify", str(receipt)]) == 2
    assert "--public-key" in capsys.readouterr().err
    not_a_key = tmp_path / "x.pem"
    not_a_key.write_text("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
    assert main(["receipt", "verify", str(receipt), "--public-key", str(not_a_key)]) == 2
    assert "not a PEM public key" in capsys.readouterr().err
    with pytest.raises(ReceiptError, match="List of 2"):
        read_receipt(b"kind: List\nitems: [{}, {}]\n", where="f")
    with pytest.raises(ReceiptError, match="no PEM public key"):
        load_public_key(b"kind: ConfigMap\ndata: {other: x}\n", where="f")


def test_the_signing_key_is_generated_once_and_kept() -> None:
    kube = FakeKube()
    kube.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "swg-system"}})

    async def twice() -> tuple[Ed25519PrivateKey, Ed25519PrivateKey]:
        first = await signing_key(kube, secret="swg-receipt-signing-key", namespace="swg-system")
        again = await signing_key(kube, secret="swg-receipt-signing-key", namespace="swg-system")
        return first, again

    first, again = asyncio.run(twice())
    assert key_id(first.public_key()) == key_id(again.public_key())
    assert [w for w in kube.writes if w[0] == "create"] == [
        ("create", "Secret/swg-system/swg-receipt-signing-key")
    ]
    stored = kube.find("Secret", "swg-receipt-signing-key", "swg-system")
    assert stored is not None
    assert set(stored["data"]) == {"ed25519.key", "ed25519.pub"}


def test_a_provided_key_is_used_and_a_broken_one_named() -> None:
    import base64

    from swg_operator.receipts import private_key_pem

    kube = FakeKube()
    given = Ed25519PrivateKey.generate()
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "k", "namespace": "ns"}}
    kube.put({**secret, "data": {"ed25519.key": base64.b64encode(private_key_pem(given)).decode()}})
    found = asyncio.run(signing_key(kube, secret="k", namespace="ns"))
    assert key_id(found.public_key()) == key_id(given.public_key())
    kube.put({**secret, "data": {"ed25519.key": base64.b64encode(b"junk").decode()}})
    with pytest.raises(ReceiptError, match=r"Secret ns/k key ed25519.key: not a PEM private key"):
        asyncio.run(signing_key(kube, secret="k", namespace="ns"))


def test_keygen_makes_a_secret_the_operator_reads_and_its_public_key(
    tmp_path: Path, capsys: Any
) -> None:
    pub = tmp_path / "receipts.pub"
    assert main(["receipt", "keygen", "--namespace", "ops", "--public-key-out", str(pub)]) == 0
    secret = yaml.safe_load(capsys.readouterr().out)
    assert (secret["kind"], secret["metadata"]["namespace"]) == ("Secret", "ops")
    kube = FakeKube()
    kube.put(secret)  # as `kubectl apply` stores it (stringData into data)
    key = asyncio.run(signing_key(kube, secret="swg-receipt-signing-key", namespace="ops"))
    published = load_public_key(pub.read_bytes(), where="pub")
    assert verify_receipt(sign_receipt(RECEIPT, key), published).valid
