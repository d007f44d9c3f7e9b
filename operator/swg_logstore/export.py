"""Download bodies: a read snapshot of stored days streamed as NDJSON or as a tar of gzip files.

`LogStore.snapshot` opens the files of the requested days under its lock and returns
`DaySnapshot`s; the generators here turn them into byte chunks outside the lock, and the caller
closes the snapshots. Nothing is staged in memory or on disk.
"""

from __future__ import annotations

import gzip
import tarfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import IO

from swg_logstore import layout
from swg_logstore.durable import CHUNK
from swg_logstore.formats import LogType


@dataclass(frozen=True)
class Part:
    """A readable piece of a day: an open file, how many bytes of it belong to the snapshot,
    and whether those bytes are gzip."""

    file: IO[bytes]
    size: int
    compressed: bool


@dataclass
class DaySnapshot:
    log_type: LogType
    day: date
    parts: list[Part] = field(default_factory=list)

    def close(self) -> None:
        for part in self.parts:
            part.file.close()


# --- download bodies (generators of byte chunks; the caller closes the snapshots) -------------


def _raw_chunks(part: Part) -> Iterator[bytes]:
    part.file.seek(0)
    remaining = part.size
    while remaining > 0:
        chunk = part.file.read(min(CHUNK, remaining))
        if not chunk:
            return
        remaining -= len(chunk)
        yield chunk


def ndjson_chunks(days: Sequence[DaySnapshot]) -> Iterator[bytes]:
    """The records of the snapshots as NDJSON, day after day, in stored order."""
    for snap in days:
        for part in snap.parts:
            if part.compressed:
                part.file.seek(0)
                with gzip.GzipFile(fileobj=part.file, mode="rb") as unzipped:
                    while chunk := unzipped.read(CHUNK):
                        yield chunk
            else:
                yield from _raw_chunks(part)


class _Counter:
    """A write-only file that keeps nothing: counts the bytes written to it."""

    def __init__(self) -> None:
        self.size = 0

    def write(self, data: bytes) -> int:
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        pass


class _Collector:
    """A write-only file whose bytes the caller takes (`take`) after each write."""

    def __init__(self) -> None:
        self._pending: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._pending.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        out = b"".join(self._pending)
        self._pending.clear()
        return out


def _gzip_member(part: Part, sink: _Counter | _Collector) -> Iterator[bytes]:
    """An uncompressed part as one gzip member, written to `sink` chunk by chunk. Deterministic
    (fixed level, no name, mtime 0): compressing twice gives the same bytes, so the size can be
    learnt by a first pass into a `_Counter` and the bytes sent by a second, nothing kept."""
    take = sink.take if isinstance(sink, _Collector) else (lambda: b"")
    with gzip.GzipFile(filename="", fileobj=sink, mode="wb", compresslevel=6, mtime=0) as zipped:
        for chunk in _raw_chunks(part):
            zipped.write(chunk)
            if out := take():
                yield out
    if out := take():
        yield out


def _day_gzip_size(snap: DaySnapshot) -> int:
    """The size of one day as a gzip file (`_day_gzip_chunks`), without keeping its bytes."""
    size = 0
    for part in snap.parts:
        if part.compressed:
            size += part.size
        else:
            counter = _Counter()
            for _ in _gzip_member(part, counter):
                pass
            size += counter.size
    return size


def _day_gzip_chunks(snap: DaySnapshot) -> Iterator[bytes]:
    """One day as a gzip file: compressed segments as they are (gzip members concatenate),
    open ones compressed now, on the fly."""
    for part in snap.parts:
        if part.compressed:
            yield from _raw_chunks(part)
        else:
            yield from _gzip_member(part, _Collector())


def tar_chunks(days: Sequence[DaySnapshot]) -> Iterator[bytes]:
    """A tar stream with one `<type>/<type>-<day>.jsonl.gz` member per day, streamed: nothing is
    staged in memory or on disk (a tar header needs the member's size first; an open segment's
    compressed size is counted by compressing it once without keeping the output)."""
    for snap in days:
        size = _day_gzip_size(snap)
        info = tarfile.TarInfo(layout.download_name(snap.log_type, snap.day))
        info.size = size
        info.mode = 0o644
        info.mtime = 0
        yield info.tobuf(format=tarfile.PAX_FORMAT)
        sent = 0
        for chunk in _day_gzip_chunks(snap):
            sent += len(chunk)
            yield chunk
        if sent != size:  # cannot happen (the snapshot is fixed): never send a corrupt member
            raise RuntimeError(f"{info.name}: {sent} bytes sent, {size} announced")
        if size % tarfile.BLOCKSIZE:
            yield b"\0" * (tarfile.BLOCKSIZE - size % tarfile.BLOCKSIZE)
    yield b"\0" * (2 * tarfile.BLOCKSIZE)
