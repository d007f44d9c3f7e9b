"""The single door to the API server: the `KubeApi` protocol, the kinds the operator owns, and
(in `swg_operator.kube.http`, imported only by the running operator) the real adapter."""

from swg_operator.kube.api import FIELD_MANAGER, EventType, KubeApi, KubeApiError
from swg_operator.kube.kinds import OWNED_KINDS, ResourceKind, UnknownKindError, kind_of

__all__ = [
    "FIELD_MANAGER",
    "OWNED_KINDS",
    "EventType",
    "KubeApi",
    "KubeApiError",
    "ResourceKind",
    "UnknownKindError",
    "kind_of",
]
