"""The whole `SecureWebGateway` resource as the operator reads it, and the parse boundary."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from pydantic import ValidationError

from swg_operator.api.spec import SecureWebGatewaySpec

GROUP: Final = "swg.dev"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"
KIND: Final = "SecureWebGateway"
PLURAL: Final = "securewebgateways"
SINGULAR: Final = "securewebgateway"
SHORT_NAMES: Final = ("swg",)
# On every tenant before anything of it is created (kopf puts it on, the purge takes it off):
# the API server keeps a deleted tenant until its purge is done.
FINALIZER: Final = f"{GROUP}/purge"


class SpecError(ValueError):
    """The spec cannot be honoured; `problems` holds one "field: message" line each."""

    def __init__(self, problems: tuple[str, ...]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def _field_path(loc: tuple[int | str, ...]) -> str:
    """`spec.a.b[0]`; a key that is not a plain identifier (an unknown field can be anything)
    is shown ASCII-escaped in brackets, so no message carries a newline or control text."""
    path = "spec"
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part.isascii() and part.isidentifier():
            path += f".{part}"
        else:
            path += f"[{part!a}]"
    return path


def parse_spec(spec: Mapping[str, Any]) -> SecureWebGatewaySpec:
    """Validate a raw spec; raise `SpecError` whose lines name each offending field."""
    try:
        return SecureWebGatewaySpec.model_validate(dict(spec))
    except ValidationError as exc:
        problems = tuple(
            f"{_field_path(tuple(err['loc']))}: {_ascii_message(err['msg'])}"
            for err in exc.errors()
        )
        raise SpecError(problems) from None


def _ascii_message(message: str) -> str:
    """Messages go into status conditions and Events: escape anything outside printable ASCII
    (a pattern quoted in a message can hold the very characters it refuses)."""
    return "".join(c if " " <= c <= "~" else ascii(c)[1:-1] for c in message)
