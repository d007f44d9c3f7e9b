"""JSON as the operator's API client speaks it: request bodies, answers, watch events and the
watch cache's packed objects.

Every watch event is decoded, every owned object packed again, every apply's body encoded and
its answer decoded. msgspec (already installed: lightkube depends on it) decodes a tenant's
objects about 2.5 times as fast as the standard library's `json` and encodes them about 10
times as fast, to the same compact text for ASCII (non-ASCII is kept as UTF-8, which JSON
allows, instead of `\\u` escapes). In the running operator the gain was within the noise of
100-tenant runs (docs/benchmarks.md): JSON is one small share among many.
"""

from __future__ import annotations

from typing import Any

import msgspec

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()


def encode(value: Any) -> bytes:
    """`value` as compact JSON (UTF-8). A value JSON cannot hold raises TypeError."""
    try:
        return _encoder.encode(value)
    except msgspec.EncodeError as exc:
        raise TypeError(str(exc)) from exc


def decode(raw: bytes | str) -> Any:
    """The value of the JSON document `raw`. A malformed one raises ValueError, as
    `json.loads` does."""
    try:
        return _decoder.decode(raw)
    except msgspec.DecodeError as exc:
        raise ValueError(str(exc)) from exc
