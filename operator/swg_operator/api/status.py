"""`SecureWebGateway.status`: what the operator observed and did. Every field is declared here
(and so in the CRD): undeclared status fields are pruned silently by the API server."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from swg_operator.api.base import CamelModel
from swg_operator.api.spec import MAX_PURGE_DAYS, Phase

ConditionStatus = Literal["True", "False", "Unknown"]


class Condition(CamelModel):
    """A kstatus / metav1.Condition-shaped condition."""

    type: Annotated[str, Field(pattern=r"^[A-Z][A-Za-z0-9]{0,63}$")]
    status: ConditionStatus
    reason: Annotated[str, Field(pattern=r"^[A-Z][A-Za-z0-9]{0,127}$")]
    message: Annotated[str, Field(max_length=32768)] = ""
    last_transition_time: str = Field(description="RFC 3339 UTC; moves only when status flips.")
    observed_generation: int | None = None


class ComputedSizing(CamelModel):
    """The sizing applied: the model's replicas and quota, the log volume as claimed."""

    proxy_replicas: int
    antivirus_replicas: int
    quota_cpu: str
    quota_memory: str
    log_storage: str


class CancellationStatus(CamelModel):
    cancelled_at: str | None = Field(default=None, description="The deletion time (API server).")
    purge_at: str | None = Field(default=None, description="When the purge is due (UTC).")
    legal_hold: bool = False
    purged_at: str | None = None
    receipt: str | None = Field(
        default=None, description="Name of the purge receipt ConfigMap in the operator namespace."
    )


class SecureWebGatewayStatus(CamelModel):
    observed_generation: int | None = None
    phase: Phase | None = None
    namespace: str | None = None
    proxy_endpoint: str | None = Field(
        default=None, description="host:port clients configure as their HTTP proxy."
    )
    sizing: ComputedSizing | None = None
    conditions: tuple[Condition, ...] = ()
    cancellation: CancellationStatus | None = None
    purge_after_days: Annotated[int, Field(ge=0, le=MAX_PURGE_DAYS)] | None = Field(
        default=None,
        description=(
            "spec.cancellation.purgeAfterDays as the operator last handled it before the "
            "cancellation: an edit made after the deletion can lengthen the wait, never shorten it."
        ),
    )
