"""The tenant's status, mirrored into its namespace for its admins: ConfigMap `tenant-status`.

The `SecureWebGateway` is cluster-scoped, and the admins hold namespace-scoped read rights only
(ISO/IEC 27017 9.2.x), so they cannot read its status. The operator copies what they need of it into
this ConfigMap whenever the status changes (an unchanged status writes nothing), and their
ClusterRole grants `get` on it by name. `kubectl swg status TENANT` prints it.

Keys (every value a string; absent when the status has no such field):

| key | status field |
| --- | --- |
| `tenant` | the tenant's name |
| `phase` | `phase` |
| `observedGeneration` | `observedGeneration` |
| `proxyEndpoint` | `proxyEndpoint` (none once cancelled) |
| `sizing.<field>` | `sizing`: proxyReplicas, antivirusReplicas, quotaCpu, quotaMemory, logStorage |
| `cancellation.<field>` | `cancellation`: `cancelledAt`, `purgeAt`, `legalHold` (`true`/`false`) |
| `conditions` | JSON array, a condition a line: type, status, reason, message, lastTransitionTime |
| `contract` | JSON object: options, filtering, sizing, logs, region (`render.contract_view`) |

`contract` is the spec as the operator applies it, without secrets; absent while the spec is
invalid.

Not mirrored: the purge receipt's name (a ConfigMap of the operator's namespace) and the
messages of a failure inside the operator (reason `InternalError`: an exception text is the
platform team's to read, the admins get a sentence saying it is being looked at).

Pure: no I/O, no clock.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from swg_operator import labels, naming
from swg_operator.api import SecureWebGatewaySpec, SecureWebGatewayStatus
from swg_operator.render.context import manifest
from swg_operator.render.contract_view import contract_view

CONDITION_FIELDS: Final = ("type", "status", "reason", "message", "lastTransitionTime")
INTERNAL_ERROR: Final = "InternalError"
INTERNAL_ERROR_MESSAGE: Final = (
    "The operator failed unexpectedly and retries with backoff; the platform team is alerted"
)


def _condition(condition: Mapping[str, Any]) -> dict[str, Any]:
    mirrored = {field: condition.get(field, "") for field in CONDITION_FIELDS}
    if mirrored["reason"] == INTERNAL_ERROR:
        mirrored["message"] = INTERNAL_ERROR_MESSAGE
    return mirrored


def status_data(
    tenant: str, status: SecureWebGatewayStatus, spec: SecureWebGatewaySpec | None = None
) -> dict[str, str]:
    """The ConfigMap's `data` for `status` (see the module docstring for the keys)."""
    wire = status.model_dump(mode="json", by_alias=True, exclude_none=True)
    data = {"tenant": tenant}
    for field in ("phase", "observedGeneration", "proxyEndpoint"):
        if field in wire:
            data[field] = str(wire[field])
    for key, value in (wire.get("sizing") or {}).items():
        data[f"sizing.{key}"] = str(value)
    cancellation = wire.get("cancellation")
    if cancellation is not None:
        for key in ("cancelledAt", "purgeAt"):
            if key in cancellation:
                data[f"cancellation.{key}"] = str(cancellation[key])
        data["cancellation.legalHold"] = "true" if cancellation.get("legalHold") else "false"
    lines = [json.dumps(_condition(c)) for c in wire.get("conditions", ())]
    data["conditions"] = "[\n" + ",\n".join(lines) + "\n]" if lines else "[]"
    if spec is not None:
        data["contract"] = json.dumps(contract_view(spec), indent=1, ensure_ascii=False)
    return data


def tenant_status_config_map(
    tenant: str,
    status: SecureWebGatewayStatus,
    *,
    service_code: str,
    spec: SecureWebGatewaySpec | None = None,
) -> dict[str, Any]:
    """The ConfigMap `tenant-status` in the tenant namespace, labelled as the tenant's."""
    metadata = {
        "name": naming.tenant_status_name(),
        "namespace": naming.tenant_namespace(tenant),
        "labels": labels.tenant_labels(tenant, service_code=service_code),
    }
    return manifest("v1", "ConfigMap", metadata, data=status_data(tenant, status, spec))


def read_status_data(data: Mapping[str, str]) -> dict[str, Any]:
    """The mirrored status back as a status-shaped document (for `kubectl swg status`): the
    inverse of `status_data` for every key it writes; unknown keys are ignored."""
    out: dict[str, Any] = {}
    if "tenant" in data:
        out["tenant"] = data["tenant"]
    if "phase" in data:
        out["phase"] = data["phase"]
    if data.get("observedGeneration", "").isdigit():
        out["observedGeneration"] = int(data["observedGeneration"])
    if "proxyEndpoint" in data:
        out["proxyEndpoint"] = data["proxyEndpoint"]
    sizing: dict[str, Any] = {}
    cancellation: dict[str, Any] = {}
    for key, value in data.items():
        group, _, field = key.partition(".")
        if group == "sizing" and field:
            sizing[field] = int(value) if field.endswith("Replicas") and value.isdigit() else value
        elif group == "cancellation" and field:
            cancellation[field] = value == "true" if field == "legalHold" else value
    if sizing:
        out["sizing"] = sizing
    if cancellation:
        out["cancellation"] = cancellation
    try:
        conditions = json.loads(data.get("conditions") or "[]")
    except ValueError:
        conditions = []
    out["conditions"] = [c for c in conditions if isinstance(c, dict)]
    try:
        contract = json.loads(data["contract"]) if "contract" in data else None
    except ValueError:
        contract = None
    if isinstance(contract, dict):
        out["contract"] = contract
    return out
