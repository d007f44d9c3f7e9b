"""The tenant log records, and the parsers that build them from what Squid and c-icap write.

One record is one JSON object on one line (docs/logs.md shows an example of each type). Every
record starts with the same keys, in this order: `ts` (UTC, ISO 8601, milliseconds), `type`,
`id` (unique per record: request id, type and, for scans, the direction), `requestId` (the same
for every record of one HTTP transaction), `tenant`, `serviceCode`. The store adds the last two
(it serves one tenant); the shipper builds the rest with the functions here.

Pure: no I/O, no clock. A line that cannot be read raises `MalformedLineError`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Final
from urllib.parse import urlsplit

from swg_logstore.formats import (
    CICAP_FIELDS,
    DECISION_ALIASES,
    PSEUDO_CATEGORIES,
    RECORD_VERSION,
    TENANT_POLICY,
    Decision,
    LogType,
    MatchedList,
    SourceKind,
)

JsonScalar = str | int | float | bool | None
Record = dict[str, JsonScalar]

HEAD_KEYS: Final = ("ts", "type", "id", "requestId", "tenant", "serviceCode")
REQUEST_ID_LENGTH: Final = 20  # hex digits of sha256: 80 bits
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_THREAT = re.compile(r"Threat=([^;]+);?")
_SQUID_RECORD_START = '{"v":'


class MalformedLineError(ValueError):
    """A raw log line that does not have the shape its source's format gives it."""


# --- small conversions -----------------------------------------------------------------------


def request_id(raw: str | None) -> str | None:
    """The public request id: a digest of Squid's raw id (start time, pod address, transaction
    number), so records link without showing the gateway's internal addresses."""
    if raw is None or raw in ("", "-"):
        return None
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:REQUEST_ID_LENGTH]


def iso_ms(epoch_ms: int) -> str:
    """`2026-11-26T09:15:30.123Z` for milliseconds since the epoch (integer arithmetic)."""
    moment = _EPOCH + timedelta(milliseconds=epoch_ms)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{epoch_ms % 1000:03d}Z"


def epoch_ms(text: str) -> int:
    """Milliseconds of Squid's `<seconds>.<milliseconds>` or c-icap's `<seconds>`."""
    seconds, _, fraction = text.strip().partition(".")
    if not seconds.isdigit() or (fraction and not fraction.isdigit()):
        raise MalformedLineError(f"not a timestamp: {text!r}")
    return int(seconds) * 1000 + int((fraction + "000")[:3])


def record_day(record: Mapping[str, JsonScalar], zone: tzinfo = UTC) -> date:
    """The calendar day of a record in `zone` (its daily file): the tenant's day
    (spec.logs.timeZone), cut at local midnight. A `ts` without an offset, or one that only its
    date can be read from, is taken as written."""
    ts = record.get("ts")
    if not isinstance(ts, str) or len(ts) < 10:
        raise MalformedLineError(f"record without a timestamp: {record!r}")
    try:
        written = date.fromisoformat(ts[:10])
    except ValueError as err:
        raise MalformedLineError(f"record with a bad timestamp {ts!r}") from err
    try:
        moment = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return written
    if moment.tzinfo is None:
        return written
    return moment.astimezone(zone).date()


def _text(value: object) -> str | None:
    """Squid and c-icap print `-` for an absent value."""
    if not isinstance(value, str) or value in ("", "-"):
        return None
    return value


def _int(value: object) -> int | None:
    text = _text(value)
    if text is None or not text.isdigit():
        return None
    return int(text)


def _first(value: object) -> str | None:
    """A note logged with %{key}note: several values are comma-separated; the first rule that
    matched is the one that decided."""
    text = _text(value)
    return text.split(",", 1)[0].strip() or None if text else None


def host_of(url: str | None, method: str | None) -> str | None:
    if url is None:
        return None
    if method == "CONNECT" or "://" not in url:
        host = url.rsplit(":", 1)[0] if url.count(":") == 1 else url
        return host.strip("[]").lower() or None
    try:
        return urlsplit(url).hostname
    except ValueError:
        return None


def threat_name(header: str | None) -> str | None:
    """The signature of an `X-Infection-Found: Type=0; Resolution=2; Threat=NAME;` header."""
    if header is None:
        return None
    match = _THREAT.search(header)
    return match.group(1).strip() if match else None


def _decode_user(value: str | None) -> str | None:
    """c-icap logs the user name header as Squid sent it: base64."""
    if value is None:
        return None
    try:
        return base64.b64decode(value, validate=True).decode("utf-8", errors="replace") or None
    except (binascii.Error, ValueError):
        return value


def _direction(icap_method: str | None) -> str | None:
    return {"REQMOD": "upload", "RESPMOD": "download"}.get(icap_method or "")


def _record_id(rid: str | None, *parts: str) -> str | None:
    return ":".join((rid, *parts)) if rid else None


# --- Squid JSON lines -----------------------------------------------------------------------


def load_squid_json(line: str) -> dict[str, object]:
    """One line of a Squid JSON logformat. Squid's `%"` encoding lets other control bytes pass
    raw, so strict JSON is not required. A line glued to the fragment of a record cut by a
    crash mid-write is read from its last record start."""
    try:
        value = json.loads(line, strict=False)
    except json.JSONDecodeError:
        start = line.rfind(_SQUID_RECORD_START)
        if start <= 0:
            raise MalformedLineError(f"not a JSON record: {line[:200]!r}") from None
        try:
            value = json.loads(line[start:], strict=False)
        except json.JSONDecodeError:
            raise MalformedLineError(f"not a JSON record: {line[:200]!r}") from None
    if not isinstance(value, dict) or value.get("v") != RECORD_VERSION:
        raise MalformedLineError(f"not a version {RECORD_VERSION} record: {line[:200]!r}")
    return value


# clamd's names for what it could not scan (AlertExceedsMax, AlertEncrypted): c-icap blocks
# them like a virus, the records say why.
_UNSCANNABLE: Final = (
    ("Heuristics.Limits.Exceeded.", "over-limit"),
    ("Heuristics.Encrypted.", "encrypted"),
    # contentControls.fileTypes (render.content): refused for what the file is.
    ("SWG.FileType.", "file-type"),
)


def detection_verdict(signature: str) -> str:
    """`infected`, or `over-limit` / `encrypted` when the "signature" is clamd saying it could
    not scan the object, or `file-type` when it is one of the tenant's blocked file types."""
    for prefix, verdict in _UNSCANNABLE:
        if signature.startswith(prefix):
            return verdict
    return "infected"


def _access_verdict(raw: Mapping[str, object]) -> tuple[str, str | None]:
    signature = threat_name(_text(raw.get("av")))
    if signature is not None:
        return detection_verdict(signature), signature
    if _text(raw.get("icap")) is None:
        return "not-scanned", None
    if _text(raw.get("err")) == "ERR_ICAP_FAILURE":
        return "error", None
    return "clean", None


def squid_access_records(line: str) -> list[Record]:
    """The `access` record of one Squid transaction and, when a filtering rule decided, its
    `urlfilter` record."""
    raw = load_squid_json(line)
    rid = request_id(_text(raw.get("rid")))
    ts = iso_ms(epoch_ms(str(raw.get("t", ""))))
    method = _text(raw.get("method"))
    url = _text(raw.get("url"))
    squid_status = _text(raw.get("squid"))
    status = _int(raw.get("status")) or None
    decision, matched, category = _filter_notes(raw)
    if decision is None and squid_status is not None and squid_status.startswith("TCP_DENIED"):
        decision = "deny"  # refused by access control (client address, port), not by a filter
    verdict, signature = _access_verdict(raw)
    common: Record = {
        "clientIp": _text(raw.get("client")),
        "user": _text(raw.get("user")),
        "method": method,
        "url": url,
        "host": host_of(url, method),
    }
    access: Record = {
        "ts": ts,
        "type": LogType.ACCESS.value,
        "id": _record_id(rid, LogType.ACCESS.value),
        "requestId": rid,
        **common,
        "status": status,
        "bytesOut": _int(raw.get("out")),
        "bytesIn": _int(raw.get("in")),
        "durationMs": _int(raw.get("ms")),
        "squidStatus": squid_status,
        "contentType": _text(raw.get("ctype")),
        "decision": decision or Decision.ALLOW.value,
        "category": category,
        "list": matched,
        "policy": _first(raw.get("policy")) or (TENANT_POLICY if decision else None),
        "av": verdict,
        "avSignature": signature,
        "tls": _text(raw.get("bump")),
        "sni": _text(raw.get("sni")),
        "error": _text(raw.get("err")),
    }
    records = [access]
    if _is_filter_decision(decision, matched):
        records.append(
            {
                "ts": ts,
                "type": LogType.URLFILTER.value,
                "id": _record_id(rid, LogType.URLFILTER.value),
                "requestId": rid,
                **common,
                "decision": decision,
                "category": access["category"],
                "list": matched,
                "policy": access["policy"],
                "status": status,
            }
        )
    return records


def _filter_notes(raw: Mapping[str, object]) -> tuple[str | None, str | None, str | None]:
    """(decision, list, category) from the annotations; a `category` that names a list (the
    templates' older spelling) is read as that list."""
    decision = _first(raw.get("decision"))
    if decision is not None and decision in DECISION_ALIASES:
        decision = DECISION_ALIASES[decision].value
    matched = _first(raw.get("list"))
    category = _first(raw.get("category"))
    if category is not None and category in PSEUDO_CATEGORIES:
        matched = matched or PSEUDO_CATEGORIES[category].value
        category = None
    elif category is not None and matched is None:
        matched = MatchedList.CATEGORY.value
    return decision, matched, category


def _is_filter_decision(decision: str | None, matched: str | None) -> bool:
    """A URL-filter record is written when a filtering rule decided: every block, every bypass,
    every allow by an allow list; not the default allow of unlisted destinations."""
    if decision is None or decision == "deny":
        return False
    if decision != Decision.ALLOW.value:
        return True
    return matched is not None and matched != MatchedList.DEFAULT.value


def squid_sandbox_record(line: str) -> Record | None:
    """The `sandbox` record of one ICAP transaction with the sandbox analyser."""
    raw = load_squid_json(line)
    rid = request_id(_text(raw.get("icap")))
    icap_status = _int(raw.get("icapStatus"))
    threat = threat_name(_text(raw.get("threat"))) or _violation(_text(raw.get("violations")))
    direction = _direction(_text(raw.get("icapMethod")))
    if threat is not None:
        verdict = "malicious"
    elif icap_status == 204:
        verdict = "clean"
    elif icap_status == 200:
        verdict = "modified"
    else:
        verdict = "error"
    method = _text(raw.get("method"))
    url = _text(raw.get("url"))
    return {
        "ts": iso_ms(epoch_ms(str(raw.get("t", "")))),
        "type": LogType.SANDBOX.value,
        "id": _record_id(rid, LogType.SANDBOX.value, direction or "unknown"),
        "requestId": rid,
        "clientIp": _text(raw.get("client")),
        "user": _text(raw.get("user")),
        "method": method,
        "url": url,
        "host": host_of(url, method),
        "service": _text(raw.get("service")),
        "direction": direction,
        "verdict": verdict,
        "threat": threat,
        "icapStatus": icap_status,
        "durationMs": _int(raw.get("ms")),
    }


def _violation(header: str | None) -> str | None:
    """`X-Violations-Found: <count>\\n<file>\\n<threat>\\n...` (escaped newlines in the log)."""
    if header is None:
        return None
    parts = [p.strip() for p in re.split(r"\\n|\n", header) if p.strip()]
    return parts[2] if len(parts) >= 3 and parts[0].isdigit() and int(parts[0]) > 0 else None


# --- c-icap TAB-separated lines --------------------------------------------------------------

_AV_VERDICT: Final = {
    "passed": "clean",
    "blocked": "infected",
    "partiallyblocked": "infected-partial",
}


def cicap_antivirus_record(line: str) -> Record | None:
    """The `antivirus` record of one c-icap scan; None for lines that are not scans (OPTIONS)."""
    fields = line.rstrip("\r\n").split("\t", len(CICAP_FIELDS) - 1)
    if len(fields) != len(CICAP_FIELDS):
        raise MalformedLineError(
            f"expected {len(CICAP_FIELDS)} TAB-separated fields: {line[:200]!r}"
        )
    seconds, raw_rid, client, user, icap_method, icap_status, action, virus, bytes_in, _, url = (
        fields
    )
    if icap_method not in ("REQMOD", "RESPMOD"):
        return None
    rid = request_id(_text(raw_rid))
    status = _int(icap_status)
    signature = _text(virus)
    verdict = _AV_VERDICT.get(action)
    if verdict is None:
        verdict = "infected" if signature else ("error" if (status or 500) >= 400 else "clean")
    if signature is not None and verdict.startswith("infected"):
        verdict = detection_verdict(signature) if verdict == "infected" else verdict
    direction = _direction(icap_method)
    return {
        "ts": iso_ms(epoch_ms(seconds)),
        "type": LogType.ANTIVIRUS.value,
        "id": _record_id(rid, LogType.ANTIVIRUS.value, direction or "unknown"),
        "requestId": rid,
        "clientIp": _text(client),
        "user": _decode_user(_text(user)),
        "url": _text(url),
        "host": host_of(_text(url), None),
        "direction": direction,
        "verdict": verdict,
        "signature": signature,
        "bytesScanned": _int(bytes_in),
        "icapStatus": status,
    }


# --- dispatch and the final shape -------------------------------------------------------------

_PARSERS: Final[dict[SourceKind, Callable[[str], list[Record]]]] = {
    SourceKind.SQUID_ACCESS: squid_access_records,
    SourceKind.SQUID_SANDBOX: lambda line: [r for r in [squid_sandbox_record(line)] if r],
    SourceKind.CICAP_ANTIVIRUS: lambda line: [r for r in [cicap_antivirus_record(line)] if r],
}


def parse_line(kind: SourceKind, line: str) -> list[Record]:
    """Every record one raw line of `kind` yields (possibly none)."""
    return _PARSERS[kind](line)


def decode(raw: bytes) -> str:
    """Log bytes as text: Squid passes non-ASCII bytes of URLs and headers through raw."""
    return raw.decode("utf-8", errors="replace")


def finalise(record: Mapping[str, JsonScalar], *, tenant: str, service_code: str) -> Record:
    """The stored record: the head keys in their fixed order (tenant and service code set by
    the store, whatever the sender said), then the type's own keys."""
    head: Record = {
        "ts": record.get("ts"),
        "type": record.get("type"),
        "id": record.get("id"),
        "requestId": record.get("requestId"),
        "tenant": tenant,
        "serviceCode": service_code,
    }
    return head | {k: v for k, v in record.items() if k not in HEAD_KEYS}


def encode(record: Mapping[str, JsonScalar]) -> bytes:
    """One NDJSON line (UTF-8, compact)."""
    text = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
    return text.encode("utf-8") + b"\n"


def validate(record: Mapping[str, object]) -> Record:
    """A record received from a shipper: flat JSON scalars, a known type, a readable ts."""
    out: Record = {}
    for key, value in record.items():
        if not isinstance(key, str) or not (
            value is None or isinstance(value, str | int | float | bool)
        ):
            raise MalformedLineError(f"record field {key!r} is not a JSON scalar")
        out[key] = value
    if out.get("type") not in {t.value for t in LogType}:
        raise MalformedLineError(f"unknown record type {out.get('type')!r}")
    record_day(out)
    return out
