"""The log lines of the log store and the shipper themselves (not the tenant's records): one
line per event on stderr, as text for people or as JSON for a log pipeline (`--log-format`).

Every line carries the tenant; a line about one HTTP exchange carries its request id, the same
on both sides (the shipper sends it as `X-Request-Id`, the store logs it and answers with it).

    text: Shipper could not reach the log store: ... tenant=acme requestId=5f0c...
    json: {"ts":"2026-11-26T10:00:00.000Z","level":"warning","logger":"swg_logstore.shipper",
           "msg":"Shipper could not reach the log store: ...","tenant":"acme","requestId":"5f0c..."}
"""

from __future__ import annotations

import json
import logging
import sys
import uuid
from datetime import UTC, datetime
from typing import IO, Final

LOGGER: Final = "swg_logstore"
FORMATS: Final = ("text", "json")
# `extra=` keys a line may carry, and their names in the output.
FIELDS: Final = {
    "tenant": "tenant",
    "request_id": "requestId",
    "source": "source",
    "stream": "stream",
    "method": "method",
    "path": "path",
    "status": "status",
    "duration_ms": "durationMs",
}
REQUEST_ID_HEADER: Final = "X-Request-Id"


def new_request_id() -> str:
    return uuid.uuid4().hex[:16]


def _fields(record: logging.LogRecord) -> dict[str, object]:
    found: dict[str, object] = {}
    for attribute, name in FIELDS.items():
        value = getattr(record, attribute, None)
        if value is not None:
            found[name] = value
    return found


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts (UTC), level, logger, msg, then the fields present."""

    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.fromtimestamp(record.created, UTC)
        line: dict[str, object] = {
            "ts": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        line |= _fields(record)
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, separators=(",", ":"), default=str)


class TextFormatter(logging.Formatter):
    """The message, then `name=value` for each field present."""

    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        fields = " ".join(f"{name}={value}" for name, value in _fields(record).items())
        line = f"{text} {fields}" if fields else text
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class _TenantFilter(logging.Filter):
    def __init__(self, tenant: str | None) -> None:
        super().__init__()
        self.tenant = tenant

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "tenant", None) is None:
            record.tenant = self.tenant
        return True


def configure(
    log_format: str, *, tenant: str | None, stream: IO[str] | None = None
) -> logging.Logger:
    """Send the `swg_logstore` loggers to `stream` (stderr) in `log_format`, every line
    carrying `tenant`. Calling it again replaces the previous setup."""
    if log_format not in FORMATS:
        raise ValueError(f"log format {log_format!r}: expected one of {', '.join(FORMATS)}")
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(_TenantFilter(tenant))
    logger = logging.getLogger(LOGGER)
    for old in list(logger.handlers):
        logger.removeHandler(old)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger
