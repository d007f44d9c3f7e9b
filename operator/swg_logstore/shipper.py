"""The shipper: a sidecar in the proxy and anti-virus pods that moves records from the files
Squid and c-icap write to the tenant's log store, losing none and (with the store's offsets)
storing none twice.

How (docs/logs.md, "How records travel"):

* Squid and c-icap append one line per record to a file on the pod's state emptyDir (it
  survives container restarts). The shipper reads each file as a *stream*: a random id made
  the first time it sees that file (device and inode), kept with the read offset in a small
  state file on the same emptyDir.
* It reads whole lines from its acknowledged offset, turns them into records
  (`records.parse_line`), and POSTs them with the offset where each line ends. Only after the
  store answers with the offset it has durably stored does the shipper move its own offset
  (written atomically). A crash anywhere resends from the last saved offset; the store skips
  what it already has.
* Shipped bytes are freed by punching a hole in the file (fallocate PUNCH_HOLE): the writers
  keep appending to the same file, offsets keep growing, and nothing needs to rotate or
  signal Squid. On a filesystem without hole punching the file only grows (bounded by the
  emptyDir's sizeLimit).
* On SIGTERM it keeps shipping until everything written is stored and the files stopped
  growing for `linger` seconds, so a pod that is deleted drains first (run it as a native
  sidecar so it stops after Squid).

Stdlib only (it runs in the log store image as the sidecar).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import gzip
import http.client
import json
import logging
import os
import signal
import time
import uuid
from collections import deque
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from swg_logstore.formats import SourceKind
from swg_logstore.logs import REQUEST_ID_HEADER, new_request_id
from swg_logstore.records import MalformedLineError, decode, parse_line

DEFAULT_BATCH_BYTES: Final = 1024 * 1024
MAX_LINE_BYTES: Final = 1024 * 1024
HOLE_ALIGN: Final = 4096
FALLOC_FL_KEEP_SIZE: Final = 0x01
FALLOC_FL_PUNCH_HOLE: Final = 0x02
SANDBOX_REPEAT_WINDOW: Final = 64

_libc = ctypes.CDLL(None, use_errno=True)
log = logging.getLogger(__name__)


class StoreUnavailableError(RuntimeError):
    """The store did not acknowledge a batch; it is sent again later."""

    def __init__(self, message: str, *, request_id: str) -> None:
        super().__init__(message)
        self.request_id = request_id


def punch_hole(fd: int, offset: int, length: int) -> bool:
    """Free `length` bytes at `offset` of the file (it keeps its size). False when the
    filesystem cannot."""
    if length <= 0:
        return True
    result = int(
        _libc.fallocate(
            ctypes.c_int(fd),
            ctypes.c_int(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE),
            ctypes.c_longlong(offset),
            ctypes.c_longlong(length),
        )
    )
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
        return False
    raise OSError(code, f"fallocate(PUNCH_HOLE): {os.strerror(code)}")


@dataclass
class StreamState:
    stream: str
    device: int
    inode: int
    offset: int = 0
    punched: int = 0


def _save(path: Path, state: StreamState) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8") as out:
        json.dump(asdict(state), out)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)


def _load(path: Path) -> StreamState | None:
    try:
        return StreamState(**json.loads(path.read_text(encoding="utf-8")))
    except (FileNotFoundError, ValueError, TypeError):
        return None


class Source:
    """One raw log file and where shipping it has got to."""

    def __init__(self, kind: SourceKind, path: Path, state_dir: Path) -> None:
        self.kind = kind
        self.path = path
        self.state_path = state_dir / f"{kind.value}.json"
        self.state = _load(self.state_path)
        self.malformed = 0
        self._can_punch = True
        self._recent: deque[bytes] = deque(maxlen=SANDBOX_REPEAT_WINDOW)

    def _open(self) -> tuple[int, os.stat_result] | None:
        try:
            fd = os.open(self.path, os.O_RDWR if self._can_punch else os.O_RDONLY)
        except FileNotFoundError:
            return None
        except PermissionError:
            self._can_punch = False
            log.warning(
                "Shipper could not open %s for writing: no hole punching",
                self.path,
                extra={"source": self.kind.value},
            )
            return self._open()
        return fd, os.fstat(fd)

    def _stream_for(self, info: os.stat_result) -> StreamState:
        state = self.state
        if (
            state is None
            or (state.device, state.inode) != (info.st_dev, info.st_ino)
            or info.st_size < state.offset
        ):
            state = StreamState(
                stream=f"{self.kind.value}-{uuid.uuid4().hex}",
                device=info.st_dev,
                inode=info.st_ino,
            )
            _save(self.state_path, state)
            self.state = state
        return state

    def read_batch(self, limit: int) -> tuple[StreamState, int, list[dict[str, Any]], int] | None:
        """(state, offset reached, records with their end offsets, lines read), or None when
        there is no complete new line."""
        opened = self._open()
        if opened is None:
            return None
        fd, info = opened
        try:
            state = self._stream_for(info)
            data = os.pread(fd, limit, state.offset)
            end = data.rfind(b"\n")
            if end < 0:
                if len(data) < limit:
                    return None  # nothing, or a line still being written
                data = os.pread(fd, MAX_LINE_BYTES * 16, state.offset)  # one long line
                end = data.find(b"\n")
                if end < 0:
                    return None
            data = data[: end + 1]
        finally:
            os.close(fd)
        records: list[dict[str, Any]] = []
        position = state.offset
        lines = 0
        for raw in data.split(b"\n")[:-1]:
            position += len(raw) + 1
            line = raw.lstrip(b"\0").rstrip(b"\r")  # zeros: a hole read by mistake
            if not line:
                continue
            lines += 1
            if self.kind is SourceKind.SQUID_SANDBOX:
                if line in self._recent:
                    continue  # Squid logs some ICAP transactions twice, identically
                self._recent.append(line)
            try:
                parsed = parse_line(self.kind, decode(line))
            except MalformedLineError as err:
                self.malformed += 1
                log.warning(
                    "Shipper skipped a malformed line: %s",
                    err,
                    extra={"source": self.kind.value, "stream": state.stream},
                )
                continue
            records += [{"off": position, "record": record} for record in parsed]
        return state, position, records, lines

    def acknowledge(self, state: StreamState, acked: int) -> None:
        # The offset is saved before the hole is punched: a restart must never read from an
        # offset inside a hole. The saved `punched` may lag; punching again is harmless.
        state.offset = max(state.offset, acked)
        _save(self.state_path, state)
        aligned = state.offset - state.offset % HOLE_ALIGN
        if self._can_punch and aligned > state.punched:
            with contextlib.suppress(FileNotFoundError):
                fd = os.open(self.path, os.O_RDWR)
                try:
                    if os.fstat(fd).st_ino == state.inode:
                        if punch_hole(fd, state.punched, aligned - state.punched):
                            state.punched = aligned
                        else:
                            self._can_punch = False
                finally:
                    os.close(fd)


class StoreClient:
    """POSTs batches to the store's ingest port over one kept-alive connection."""

    def __init__(self, url: str, *, timeout: float) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"store URL {url!r}: expected http://host:port")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.timeout = timeout
        self._conn: http.client.HTTPConnection | None = None

    def send(self, stream: str, to: int, records: list[dict[str, Any]]) -> int:
        """POST one batch; the offset the store acknowledged. The batch's request id goes in
        `X-Request-Id`, so the store's log lines about it carry the same id."""
        request_id = new_request_id()
        body = gzip.compress(
            json.dumps({"stream": stream, "to": to, "records": records}).encode("utf-8"),
            compresslevel=1,
        )
        try:
            if self._conn is None:
                self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            self._conn.request(
                "POST",
                "/v1/ingest",
                body=body,
                headers={
                    "Content-Type": "application/json",
                    "Content-Encoding": "gzip",
                    REQUEST_ID_HEADER: request_id,
                },
            )
            response = self._conn.getresponse()
            payload = response.read()
        except (OSError, http.client.HTTPException) as err:
            self.close()
            message = f"{type(err).__name__}: {err}"
            raise StoreUnavailableError(message, request_id=request_id) from err
        if response.status != 200:
            message = f"HTTP {response.status}: {payload[:200]!r}"
            raise StoreUnavailableError(message, request_id=request_id)
        return int(json.loads(payload)["acked"])

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class Shipper:
    def __init__(
        self,
        sources: list[Source],
        client: StoreClient,
        *,
        batch_bytes: int = DEFAULT_BATCH_BYTES,
    ) -> None:
        self.sources = sources
        self.client = client
        self.batch_bytes = batch_bytes
        self.stopping = False

    def ship_once(self) -> int:
        """One batch from every source that has complete lines; the lines shipped."""
        shipped = 0
        for source in self.sources:
            batch = source.read_batch(self.batch_bytes)
            if batch is None:
                continue
            state, reached, records, lines = batch
            acked = self.client.send(state.stream, reached, records)
            source.acknowledge(state, acked)
            shipped += lines
        return shipped

    def run(self, *, poll_interval: float = 0.2, linger: float = 3.0) -> int:
        """Ship until stopped (SIGTERM/SIGINT) and drained; the exit code."""
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        # Logged once the signals are handled: from here a SIGTERM drains, never kills.
        log.info(
            "Shipper started for %s", ", ".join(f"{s.kind.value}={s.path}" for s in self.sources)
        )
        backoff = poll_interval
        failing = False
        quiet_since: float | None = None
        while True:
            try:
                shipped = self.ship_once()
            except StoreUnavailableError as err:
                if not failing:
                    log.warning(
                        "Shipper could not reach the log store: %s",
                        err,
                        extra={"request_id": err.request_id},
                    )
                failing = True
                time.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if failing:
                log.info("Shipper reached the log store again")
            failing, backoff = False, poll_interval
            if self.stopping:
                if shipped:
                    quiet_since = None
                elif quiet_since is None:
                    quiet_since = time.monotonic()
                elif time.monotonic() - quiet_since >= linger:
                    self.client.close()
                    return 0
            if not shipped:
                time.sleep(poll_interval)

    def _stop(self, signum: int, frame: object) -> None:
        del signum, frame
        self.stopping = True
