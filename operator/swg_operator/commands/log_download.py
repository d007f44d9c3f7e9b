"""The client half of `kubectl swg logs`: download a tenant's logs with the caller's own
cluster identity, through the API server's service proxy to the tenant's log store.

    GET /api/v1/namespaces/<swg-tenant>/services/logstore:http/proxy/v1/logs?type=..&from=..&to=..

The API server authenticates the caller (their kubeconfig: certificate, token, exec plugin)
and authorises `get` on `services/proxy` for that one Service; the operator gives a tenant's
declared admins exactly that in their tenant's namespace (render.rbac). Nothing else is
needed, and an admin of another tenant gets 403 from the API server itself.

`--server URL` talks to a log store directly instead (port-forward, tests). The HTTP client
and the API server's error shapes are shared with the other plugin commands
(commands/cluster_client.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import IO, Final
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx2 as httpx

from swg_logstore.formats import LogType
from swg_operator.commands.cluster_client import (
    ClusterClientError,
    api_status,
    http_client,
    is_authorization_refusal,
)
from swg_operator.naming import Component, service_name, tenant_namespace

SERVICE_PORT_NAME: Final = "http"
LOGS_PATH: Final = "/v1/logs"


class DownloadError(ClusterClientError):
    """The download failed; the message says why in the user's terms."""


@dataclass(frozen=True)
class LogQuery:
    tenant: str
    log_type: LogType
    # The tenant's calendar days (spec.logs.timeZone); None: the log store's default (`to`
    # today in the tenant's zone, `from` = `to`), so "today" is the customer's, not the caller's.
    first: date | None
    last: date | None
    form: str = "ndjson"  # or "tar"

    def query_string(self) -> str:
        params = {"type": self.log_type.value}
        if self.first is not None:
            params["from"] = self.first.isoformat()
        if self.last is not None:
            params["to"] = self.last.isoformat()
        params["format"] = self.form
        return urlencode(params)


def service_proxy_path(query: LogQuery) -> str:
    """The API server path of the download (relative to the cluster's server URL)."""
    namespace = tenant_namespace(query.tenant)
    service = service_name(Component.LOGSTORE)
    return (
        f"/api/v1/namespaces/{namespace}/services/{service}:{SERVICE_PORT_NAME}/proxy"
        f"{LOGS_PATH}?{query.query_string()}"
    )


def direct_path(query: LogQuery) -> str:
    return f"{LOGS_PATH}?{query.query_string()}"


UNREACHABLE_STATUSES: Final = frozenset({403, 407, 500, 502, 503, 504})


def explain(status: int, body: str, query: LogQuery) -> str:
    """What an error status means for someone downloading logs, and what to do."""
    namespace = tenant_namespace(query.tenant)
    parsed = api_status(body)
    text = str(parsed.get("message", "")) if parsed is not None else body
    detail = text.strip().replace("\n", " ")[:300]
    service = f"{service_name(Component.LOGSTORE)}:{SERVICE_PORT_NAME}"
    if status == 401:
        return "the cluster did not accept your credentials (401); log in again"
    if is_authorization_refusal(status, body):
        return (
            f"your identity may not download the logs of tenant {query.tenant!r} (403, refused "
            f"by the API server's authorization): only the admins declared in its spec.admins "
            f"may (get on services/proxy of Service {service} in namespace {namespace}). Check "
            f"with `kubectl auth can-i get services/{service} --subresource=proxy -n "
            f"{namespace}`, and ask the platform team to declare you. {detail}"
        ).strip()
    if status == 404:
        return f"no log store found for tenant {query.tenant!r} in namespace {namespace} (404)"
    if status in UNREACHABLE_STATUSES:
        said = f": {detail}" if detail else ""
        return (
            f"the log store of tenant {query.tenant!r} is not reachable now ({status}): your "
            f"request got past authorization, but the API server could not reach the log "
            f"store{said}. This is not a permission problem. Check the tenant's "
            f"LogStoreAvailable condition (`kubectl swg status {query.tenant}`) and retry; if "
            f"the log store is available and this persists, something between the API server "
            f"and the pods (a proxy or firewall) refuses the connection: tell the platform team."
        )
    return f"the download failed with HTTP {status}: {detail}"


# --- display time zone ------------------------------------------------------------------------

TENANT_ZONE: Final = "tenant"  # --local-time without a zone: the tenant's spec.logs.timeZone


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise DownloadError(f"unknown time zone {name!r}") from None


def with_local_time(line: bytes, tz: ZoneInfo) -> bytes:
    """One NDJSON record with `tsLocal` (the same instant in `tz`, ISO 8601 with offset)
    right after `ts`. Storage and `ts` stay UTC."""
    record = json.loads(line)
    ts = record.get("ts")
    if not isinstance(ts, str):
        return line
    moment = datetime.fromisoformat(ts.replace("Z", "+00:00")).astimezone(tz)
    local = {"ts": ts, "tsLocal": moment.isoformat(timespec="milliseconds")}
    out = local | {k: v for k, v in record.items() if k != "ts"}
    return json.dumps(out, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def lines_with_local_time(chunks: Iterable[bytes], tz: ZoneInfo) -> Iterator[bytes]:
    """Re-chunk a byte stream into whole records with `tsLocal` added."""
    pending = b""
    for chunk in chunks:
        pending += chunk
        *complete, pending = pending.split(b"\n")
        if complete:
            yield b"".join(with_local_time(line, tz) for line in complete if line)
    if pending:
        yield with_local_time(pending, tz)


# --- progress -------------------------------------------------------------------------------


def _size(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.1f} {unit}" if unit != "B" else f"{int(count)} B"
        count /= 1024
    raise AssertionError("unreachable")


@dataclass
class Progress:
    """Download progress for stderr: bytes, records, rate, and the day being received (NDJSON
    records start with their timestamp). `clock` is injected; `write` gets finished lines or,
    on a terminal, lines that overwrite themselves."""

    write: Callable[[str], object]
    clock: Callable[[], float] = time.monotonic
    days: int | None = None
    interactive: bool = False
    interval: float = 0.25
    received: int = 0
    records: int = 0
    day: str | None = None
    _started: float = field(default=0.0, init=False)
    _shown: float = field(default=0.0, init=False)
    _seen_days: set[str] = field(default_factory=set, init=False)

    def start(self) -> None:
        self._started = self._shown = self.clock()

    def update(self, chunk: bytes) -> None:
        self.received += len(chunk)
        self.records += chunk.count(b"\n")
        start = chunk.rfind(b'{"ts":"')
        if start >= 0 and len(chunk) >= start + 17:
            self.day = chunk[start + 7 : start + 17].decode("ascii", errors="replace")
            self._seen_days.add(self.day)
        now = self.clock()
        if self.interactive and now - self._shown >= self.interval:
            self._shown = now
            self.write("\r" + self.line(now))

    def line(self, now: float) -> str:
        elapsed = max(now - self._started, 1e-6)
        parts = [f"{_size(self.received)}", f"{self.records:,} records"]
        if self.day is not None:
            of = f"/{self.days}" if self.days is not None else ""
            parts.append(f"day {self.day} ({len(self._seen_days)}{of})")
        parts.append(f"{_size(self.received / elapsed)}/s")
        return "received " + ", ".join(parts)

    def finish(self) -> None:
        self.write(("\r" if self.interactive else "") + self.line(self.clock()) + "\n")


# --- the transfer ---------------------------------------------------------------------------


@contextlib.contextmanager
def _output(path: Path | None) -> Iterator[IO[bytes]]:
    """stdout, or FILE written as FILE.part and renamed only when the download is complete."""
    if path is None:
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    partial = path.with_name(path.name + ".part")
    try:
        with partial.open("wb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def download(
    query: LogQuery,
    *,
    output: Path | None,
    kubeconfig: str | None = None,
    context: str | None = None,
    server: str | None = None,
    progress: Progress | None = None,
    local_time: str | None = None,
) -> int:
    """Stream the logs to `output` (stdout when None); the bytes written. `local_time`: add
    `tsLocal` in this zone (`tenant`: the tenant's display zone the store announces)."""
    client = http_client(kubeconfig=kubeconfig, context=context, server=server)
    path = direct_path(query) if server else service_proxy_path(query)
    last = b""
    try:
        with client, client.stream("GET", path) as response:
            if response.status_code != 200:
                raise DownloadError(explain(response.status_code, response.read().decode(), query))
            if progress is not None:
                days = response.headers.get("X-SWG-Days")
                progress.days = int(days) if days and days.isdigit() else None
                progress.start()
            chunks: Iterable[bytes] = response.iter_bytes()
            if local_time is not None and query.form == "ndjson":
                name = local_time
                if name == TENANT_ZONE:
                    name = response.headers.get("X-SWG-Time-Zone", "UTC")
                chunks = lines_with_local_time(chunks, zone(name))
            with _output(output) as out:
                for chunk in chunks:
                    out.write(chunk)
                    last = chunk[-1:] or last
                    if progress is not None:
                        progress.update(chunk)
                if query.form == "ndjson" and last not in (b"", b"\n"):
                    raise DownloadError("the download ended in the middle of a record; retry")
    except httpx.HTTPError as err:
        raise DownloadError(f"the download was interrupted: {err}") from err
    if progress is not None:
        progress.finish()
    return progress.received if progress is not None else 0
