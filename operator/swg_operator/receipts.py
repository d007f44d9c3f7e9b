"""Signed purge receipts: evidence a customer can check without trusting the cluster.

The purge writes a receipt (a ConfigMap's `data`: tenant, service code, times, what was deleted,
the inventory). `sign_receipt` adds four fields:

* `signature.digests`: JSON `{field: sha256 hex of its value}` of every other field, sorted;
* `signature.algorithm`: `Ed25519`;
* `signature.keyId`: the first 16 hex digits of the SHA-256 of the raw public key;
* `signature`: base64 of the Ed25519 signature of the canonical bytes below.

Canonical bytes: the UTF-8 JSON (keys sorted, no whitespace, non-ASCII kept) of
`{"algorithm": ..., "digests": {...}, "keyId": ...}`. Signing the per-field digests (not the
fields' concatenation) lets `verify_receipt` name the field that was changed, added or removed.

The operator's signing key is an Ed25519 key in a Secret of its namespace (keys `ed25519.key`,
PKCS#8 PEM, and `ed25519.pub`, SubjectPublicKeyInfo PEM): created by the operator when it does
not exist, or provided by the platform team. Its public key is published with the chart.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import yaml
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from swg_operator.kube import KubeApi
from swg_operator.kube.kinds import SECRET
from swg_operator.labels import MANAGED_BY, MANAGED_BY_KEY

ALGORITHM: Final = "Ed25519"
SIGNATURE_KEY: Final = "signature"
ALGORITHM_KEY: Final = "signature.algorithm"
KEY_ID_KEY: Final = "signature.keyId"
DIGESTS_KEY: Final = "signature.digests"
SIGNATURE_FIELDS: Final = frozenset({SIGNATURE_KEY, ALGORITHM_KEY, KEY_ID_KEY, DIGESTS_KEY})

PRIVATE_KEY_FIELD: Final = "ed25519.key"
PUBLIC_KEY_FIELD: Final = "ed25519.pub"
# The key of the chart's public-key ConfigMap (templates/receipt-public-key.yaml).
PUBLISHED_KEY_FIELD: Final = "receipt-signing-key.pub"


class ReceiptError(ValueError):
    """A receipt, a key or a file could not be read; the message says which and why."""


def _json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def unsigned(data: Mapping[str, str]) -> dict[str, str]:
    """The receipt's own fields, without the signature's."""
    return {str(k): str(v) for k, v in data.items() if k not in SIGNATURE_FIELDS}


def field_digests(data: Mapping[str, str]) -> dict[str, str]:
    return {k: hashlib.sha256(v.encode()).hexdigest() for k, v in sorted(unsigned(data).items())}


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def canonical(digests: Mapping[str, str], *, key: str) -> bytes:
    """The bytes the signature is made over."""
    return _json({"algorithm": ALGORITHM, "digests": dict(digests), "keyId": key})


def sign_receipt(data: Mapping[str, str], private_key: Ed25519PrivateKey) -> dict[str, str]:
    """`data` (a receipt ConfigMap's `data`) with its signature fields, any old ones replaced."""
    digests = field_digests(data)
    kid = key_id(private_key.public_key())
    signature = private_key.sign(canonical(digests, key=kid))
    return {
        **unsigned(data),
        ALGORITHM_KEY: ALGORITHM,
        KEY_ID_KEY: kid,
        DIGESTS_KEY: json.dumps(digests, sort_keys=True, indent=1),
        SIGNATURE_KEY: base64.b64encode(signature).decode("ascii"),
    }


@dataclass(frozen=True)
class Verdict:
    key_id: str
    problems: tuple[str, ...]

    @property
    def valid(self) -> bool:
        return not self.problems


def verify_receipt(data: Mapping[str, str], public_key: Ed25519PublicKey) -> Verdict:
    """Whether `data` is a receipt signed by `public_key` and unchanged since; each problem
    names what does not match."""
    expected = key_id(public_key)
    missing = sorted(SIGNATURE_FIELDS - set(data))
    if missing:
        return Verdict(expected, (f"not signed: field {', '.join(missing)} missing",))
    if data[ALGORITHM_KEY] != ALGORITHM:
        return Verdict(expected, (f"{ALGORITHM_KEY} is {data[ALGORITHM_KEY]!r}, not {ALGORITHM}",))
    if data[KEY_ID_KEY] != expected:
        return Verdict(
            expected,
            (
                f"signed with key {data[KEY_ID_KEY]}, not with the given public key "
                f"{expected}: another operator's key, or the wrong public key file",
            ),
        )
    try:
        digests = json.loads(data[DIGESTS_KEY])
        signature = base64.b64decode(data[SIGNATURE_KEY], validate=True)
    except (ValueError, binascii.Error) as err:
        return Verdict(expected, (f"{DIGESTS_KEY} or {SIGNATURE_KEY} is damaged: {err}",))
    if not isinstance(digests, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in digests.items()
    ):
        return Verdict(expected, (f"{DIGESTS_KEY} is not a mapping of field to digest",))
    try:
        public_key.verify(signature, canonical(digests, key=expected))
    except InvalidSignature:
        return Verdict(
            expected,
            (
                f"the signature does not match {DIGESTS_KEY}: the digests were changed after "
                "signing",
            ),
        )
    problems = []
    actual = field_digests(data)
    for field in sorted(set(digests) | set(actual)):
        if field not in actual:
            problems.append(f"field {field} was removed after signing")
        elif field not in digests:
            problems.append(f"field {field} was added after signing")
        elif actual[field] != digests[field]:
            problems.append(f"field {field} was changed after signing")
    return Verdict(expected, tuple(problems))


# --- keys ---------------------------------------------------------------------------------------


def private_key_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_key_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_private_key(pem: bytes, *, where: str) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as err:
        raise ReceiptError(f"{where}: not a PEM private key without password ({err})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ReceiptError(f"{where}: not an Ed25519 key ({type(key).__name__})")
    return key


def load_public_key(text: bytes, *, where: str) -> Ed25519PublicKey:
    """A PEM public key, or a ConfigMap (YAML or JSON, as `kubectl get -o yaml` writes it) that
    holds one under `receipt-signing-key.pub` (the chart's) or `ed25519.pub`."""
    if not text.lstrip().startswith(b"-----BEGIN"):
        data = _config_map_data(text, where=where)
        pem = data.get(PUBLISHED_KEY_FIELD) or data.get(PUBLIC_KEY_FIELD)
        if pem is None:
            raise ReceiptError(f"{where}: no PEM public key, nor a key {PUBLISHED_KEY_FIELD}")
        text = pem.encode()
    try:
        key = serialization.load_pem_public_key(text)
    except ValueError as err:
        raise ReceiptError(f"{where}: not a PEM public key ({err})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ReceiptError(f"{where}: not an Ed25519 public key ({type(key).__name__})")
    return key


def _config_map_data(text: bytes, *, where: str) -> dict[str, str]:
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ReceiptError(f"{where}: neither YAML nor JSON ({err})") from None
    if isinstance(doc, dict) and doc.get("kind") == "List":
        items = doc.get("items") or []
        if len(items) != 1:
            raise ReceiptError(f"{where}: a List of {len(items)} objects; give one receipt")
        doc = items[0]
    if isinstance(doc, dict) and doc.get("kind") == "ConfigMap":
        doc = doc.get("data") or {}
    if not isinstance(doc, dict) or not all(isinstance(v, str) for v in doc.values()):
        raise ReceiptError(f"{where}: not a ConfigMap, nor a mapping of field to text")
    return {str(k): v for k, v in doc.items()}


def read_receipt(text: bytes, *, where: str) -> dict[str, str]:
    """A receipt from a file: the ConfigMap as `kubectl get configmap -o yaml` (or `-o json`)
    writes it, or its `data` alone."""
    return _config_map_data(text, where=where)


def key_secret(name: str, namespace: str, key: Ed25519PrivateKey) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {MANAGED_BY_KEY: MANAGED_BY, "app.kubernetes.io/component": "receipts"},
        },
        "stringData": {
            PRIVATE_KEY_FIELD: private_key_pem(key).decode(),
            PUBLIC_KEY_FIELD: public_key_pem(key.public_key()).decode(),
        },
    }


async def signing_key(kube: KubeApi, *, secret: str, namespace: str) -> Ed25519PrivateKey:
    """The operator's receipt signing key from the Secret `secret` in its `namespace`; created
    once (a POST, which never replaces an existing Secret) when the Secret does not exist."""
    for _ in range(2):
        found = await kube.get(SECRET, secret, namespace=namespace)
        if found is not None:
            raw = (found.get("data") or {}).get(PRIVATE_KEY_FIELD)
            where = f"Secret {namespace}/{secret} key {PRIVATE_KEY_FIELD}"
            if raw is None:
                raise ReceiptError(f"{where} is missing")
            try:
                pem = base64.b64decode(raw, validate=True)
            except binascii.Error:
                raise ReceiptError(f"{where}: not base64") from None
            return load_private_key(pem, where=where)
        if await kube.create(key_secret(secret, namespace, Ed25519PrivateKey.generate())):
            continue  # read back what is stored: the one key every receipt is signed with
    raise ReceiptError(f"Secret {namespace}/{secret} could neither be read nor created")
