"""The operator's JSON codec (`kube/wire.py`): what the standard library's `json` gave, faster."""

from __future__ import annotations

import json

import pytest

from swg_operator.kube import wire
from swg_operator.kube.cache import pack

MANIFEST = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {"name": "proxy", "namespace": "swg-acme", "labels": {"swg.dev/tenant": "acme"}},
    "data": {"block.html": "<p>ブロックされました</p>", "n": 3, "ok": True, "none": None},
}


def test_encode_is_compact_json_that_the_standard_library_reads_back() -> None:
    raw = wire.encode(MANIFEST)
    assert isinstance(raw, bytes)
    assert b", " not in raw
    assert b": " not in raw
    assert json.loads(raw) == MANIFEST
    assert "ブロック".encode() in raw  # UTF-8, no \u escapes


def test_decode_reads_bytes_and_text_alike() -> None:
    text = json.dumps(MANIFEST)
    assert wire.decode(text) == wire.decode(text.encode()) == MANIFEST


@pytest.mark.parametrize("raw", [b"", b"{", b"not json", b'{"a": 1} trailing', b"\xff\xfe"])
def test_a_malformed_document_raises_value_error(raw: bytes) -> None:
    with pytest.raises(ValueError, match=r"."):
        wire.decode(raw)


def test_a_value_json_cannot_hold_raises_type_error() -> None:
    with pytest.raises(TypeError, match=r"."):
        wire.encode({"a": object()})


def test_a_packed_object_unpacks_to_what_was_packed_without_managed_fields() -> None:
    watched = {**MANIFEST, "metadata": {**MANIFEST["metadata"], "managedFields": [{"x": 1}]}}
    packed = pack(watched, api_version="v1", kind="ConfigMap")
    unpacked = packed.unpack()
    assert unpacked == MANIFEST
    unpacked["data"]["n"] = 4  # each unpack is a fresh copy: a reader's change stays its own
    assert packed.unpack() == MANIFEST
