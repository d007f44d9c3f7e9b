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


class SpecError(ValueError):
    """The spec cannot be honoured; `problems` holds one "field: message" line each."""

    def __init__(self, problems: tuple[str, ...]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def _field_path(loc: tuple[int | str, ...]) -> str:
    path = "spec"
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def parse_spec(spec: Mapping[str, Any]) -> SecureWebGatewaySpec:
    """Validate a raw spec; raise `SpecError` whose lines name each offending field."""
    try:
        return SecureWebGatewaySpec.model_validate(dict(spec))
    except ValidationError as exc:
        problems = tuple(f"{_field_path(tuple(err['loc']))}: {err['msg']}" for err in exc.errors())
        raise SpecError(problems) from None
