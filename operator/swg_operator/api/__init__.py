"""The SecureWebGateway API: pydantic models that are the single source of truth for the CRD."""

from swg_operator.api.resource import (
    API_VERSION,
    FINALIZER,
    GROUP,
    KIND,
    PLURAL,
    SHORT_NAMES,
    SINGULAR,
    VERSION,
    SpecError,
    parse_spec,
)
from swg_operator.api.settings import Images, OperatorSettings
from swg_operator.api.spec import Phase, SecureWebGatewaySpec
from swg_operator.api.status import (
    CancellationStatus,
    ComputedSizing,
    Condition,
    SecureWebGatewayStatus,
)

__all__ = [
    "API_VERSION",
    "FINALIZER",
    "GROUP",
    "KIND",
    "PLURAL",
    "SHORT_NAMES",
    "SINGULAR",
    "VERSION",
    "CancellationStatus",
    "ComputedSizing",
    "Condition",
    "Images",
    "OperatorSettings",
    "Phase",
    "SecureWebGatewaySpec",
    "SecureWebGatewayStatus",
    "SpecError",
    "parse_spec",
]
