"""The operator's log formats (`swg-operator run --log-format text|json`).

`text` is kopf's full text format; `json` is kopf's JSON format (one object per line: `message`,
`severity`, `timestamp`, kopf's `object` reference) plus `tenant` and `generation` on every
record logged while the operator handles a SecureWebGateway, so a log pipeline can select one
tenant's lines, and one change of its spec, without parsing messages.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, Final

from swg_operator.api import KIND

LOG_FORMATS: Final = ("text", "json")

CurrentBody = Callable[[], Mapping[str, Any] | None]


class TenantFields(logging.Filter):
    """Adds `tenant` and `generation` to a record from the SecureWebGateway being handled.

    `current_body` returns the body of the object kopf is handling in the current task (None
    outside a handler); kopf's own per-object records carry a reference (`k8s_ref`) naming it.
    """

    def __init__(self, current_body: CurrentBody) -> None:
        super().__init__()
        self._current_body = current_body

    def filter(self, record: logging.LogRecord) -> bool:
        body = self._current_body()
        if body is not None and body.get("kind") == KIND:
            metadata = body.get("metadata") or {}
            record.tenant = metadata.get("name")
            record.generation = metadata.get("generation")
            return True
        ref = getattr(record, "k8s_ref", None)
        if isinstance(ref, Mapping) and ref.get("kind") == KIND:
            record.tenant = ref.get("name")
        return True


def kopf_current_body() -> Mapping[str, Any] | None:
    """The body of the object kopf is handling in this task (its handler context), if any."""
    try:
        from kopf._core.actions import execution
    except ImportError:  # pragma: no cover - kopf moved its internals; fields are then omitted
        return None
    cause = execution.cause_var.get(None)
    body = getattr(cause, "body", None)
    return body if isinstance(body, Mapping) else None


def configure_logging(log_format: str, *, verbose: bool) -> None:
    """kopf's root handler in `log_format`, with the tenant fields on every record."""
    import kopf

    if log_format not in LOG_FORMATS:
        choices = ", ".join(LOG_FORMATS)
        raise ValueError(f"--log-format must be one of {choices}, not {log_format!r}")
    kopf.configure(
        verbose=verbose,
        log_format=kopf.LogFormat.JSON if log_format == "json" else kopf.LogFormat.FULL,
    )
    tenant_fields = TenantFields(kopf_current_body)
    for handler in logging.getLogger().handlers:
        handler.addFilter(tenant_fields)
