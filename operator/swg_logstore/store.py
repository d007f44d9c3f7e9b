"""The log store's files: exactly-once ingestion, daily segments, compression, retention, reads.

Exactly once. Every shipper reads one raw log file as a *stream* (an id it makes when it first
sees that file) and sends records with the byte offset where their source line ends. The store
keeps, per stream, the highest offset it has stored (`state/streams.json`): a record at or
below it is a duplicate of something already stored and is skipped. So at-least-once shipping
(a shipper resends whatever it has no acknowledgement for) becomes exactly-once storage,
whatever the records contain.

Crash safety. Writing a batch is: write `state/intent.json` (the stream, the offset the batch
reaches and the size of every file it will append to), append and fsync the segments, then
replace `streams.json` (the commit point) and remove the intent. Opening the store after a
crash finds the intent: if `streams.json` already has the batch's offset the batch is whole;
if not, the segments are cut back to their recorded sizes and the shipper's retry writes the
batch again. Compressed files appear by rename after fsync; directories are deleted by rename
first. No state is kept in memory that the files do not also hold.

Thread-safe: one lock orders ingestion, sealing, deletion and read snapshots; compression runs
outside it on a sealed segment that nothing appends to any more.
"""

from __future__ import annotations

import gzip
import os
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from swg_logstore import layout
from swg_logstore.batch import Batch
from swg_logstore.durable import CHUNK, fsync_dir, read_json, write_json_atomic
from swg_logstore.export import DaySnapshot, Part
from swg_logstore.formats import LogType
from swg_logstore.layout import Segment, SegmentState
from swg_logstore.records import (
    Record,
    encode,
    finalise,
    iso_ms,
    record_day,
)
from swg_logstore.retention import (
    closable_days,
    expired_days,
    first_retained_day,
    is_retained,
    load_zone,
    local_day,
)

STATE_VERSION: Final = 1
# Streams idle this long after the retention window are forgotten (their records are gone).
STREAM_MEMORY_DAYS: Final = 7
# Timestamps are the senders' clocks. A record dated later than the store's clock plus this
# skew (a node clock far ahead, a forged line) is stored at the store's time of receipt, its
# own time kept in `tsReported`: it lands in today's file and expires with it, instead of
# opening a day that the retention window would never reach.
MAX_FUTURE_SKEW: Final = timedelta(minutes=5)


@dataclass(frozen=True)
class StoreConfig:
    root: Path
    tenant: str
    service_code: str
    retention_days: int
    close_grace: timedelta = timedelta(minutes=10)
    time_zone: str = "UTC"  # spec.logs.timeZone: where the store's days start and end
    legal_hold: bool = False  # spec.cancellation.legalHold: no day expires while held


@dataclass(frozen=True)
class IngestResult:
    acked: int
    stored: int
    duplicates: int
    expired: int


@dataclass
class Counters:
    stored: int = 0
    duplicates: int = 0
    expired: int = 0
    clamped: int = 0
    batches: int = 0
    compressed_segments: int = 0
    deleted_days: int = 0
    recovered_batches: int = 0


# --- timestamps -----------------------------------------------------------------------------


def _epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _too_far_ahead(record: Record, now: datetime) -> bool:
    """Whether the record's `ts` is later than `now` plus `MAX_FUTURE_SKEW`."""
    ts = str(record.get("ts"))
    try:
        moment = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        # A ts `validate` accepted by its day alone: judge it by that day.
        return record_day(record) > (now + MAX_FUTURE_SKEW).date()
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=now.tzinfo)
    return moment > now + MAX_FUTURE_SKEW


# --- the store ------------------------------------------------------------------------------


class LogStore:
    def __init__(self, config: StoreConfig) -> None:
        self.config = config
        self.root = config.root
        self.zone = load_zone(config.time_zone)  # ValueError naming spec.logs.timeZone
        self.counters = Counters()
        # Called with each record once it is on disk, and the ingestion time (metrics).
        self.observer: Callable[[Record, datetime], None] | None = None
        self._lock = threading.Lock()
        self._state_dir = self.root / layout.STATE_DIR
        self._streams_path = self._state_dir / layout.STREAMS_FILE
        self._intent_path = self._state_dir / layout.INTENT_FILE
        self._state_dir.mkdir(parents=True, exist_ok=True)
        for log_type in LogType:
            (self.root / log_type.value).mkdir(exist_ok=True)
        self._streams: dict[str, dict[str, Any]] = {}
        self._recover()

    # ------------------------------------------------------------------ recovery
    def _recover(self) -> None:
        for leftover in self._state_dir.glob(".*.tmp"):
            leftover.unlink()
        state = read_json(self._streams_path) or {}
        self._streams = dict(state.get("streams", {}))
        intent = read_json(self._intent_path)
        if intent is not None:
            acked = self._acked(str(intent["stream"]))
            if acked < int(intent["to"]):
                for name, size in intent["files"].items():
                    path = Path(name)
                    if int(size) < 0:
                        path.unlink(missing_ok=True)
                    elif path.exists():
                        os.truncate(path, int(size))
                        with path.open("rb") as synced:
                            os.fsync(synced.fileno())
                self.counters.recovered_batches += 1
            self._intent_path.unlink()
            fsync_dir(self._state_dir)
        for log_type in LogType:
            type_dir = self.root / log_type.value
            for child in type_dir.iterdir():
                if child.name.startswith(layout.DELETING_PREFIX):
                    shutil.rmtree(child, ignore_errors=True)
                elif child.is_dir():
                    self._recover_day(child)

    @staticmethod
    def _recover_day(directory: Path) -> None:
        for leftover in directory.glob("*.tmp"):
            leftover.unlink()
        segments = [layout.parse_segment(p) for p in directory.iterdir()]
        closed = {s.seq for s in segments if s is not None and s.compressed}
        for segment in segments:
            # A raw segment beside its complete compressed copy: the crash came between the
            # rename of the copy and the removal of the raw file.
            if segment is not None and not segment.compressed and segment.seq in closed:
                segment.path.unlink()

    def _acked(self, stream: str) -> int:
        entry = self._streams.get(stream)
        return int(entry["offset"]) if entry else 0

    def today(self, now: datetime) -> date:
        """The tenant's day of `now`: "today" of retention and downloads."""
        return local_day(now, self.zone)

    # ------------------------------------------------------------------ ingestion
    def ingest(self, batch: Batch, *, now: datetime) -> IngestResult:
        today = self.today(now)
        with self._lock:
            acked = self._acked(batch.stream)
            if batch.to <= acked:
                self.counters.duplicates += len(batch.records)
                return IngestResult(acked=acked, stored=0, duplicates=len(batch.records), expired=0)
            fresh = [(off, rec) for off, rec in batch.records if off > acked]
            duplicates = len(batch.records) - len(fresh)
            lines: dict[Path, list[bytes]] = {}
            targets: dict[tuple[LogType, date], Path] = {}
            expired = 0
            kept: list[Record] = []
            for _, record in fresh:
                final = finalise(
                    record, tenant=self.config.tenant, service_code=self.config.service_code
                )
                if _too_far_ahead(final, now):
                    final = final | {"ts": iso_ms(_epoch_ms(now)), "tsReported": final["ts"]}
                    self.counters.clamped += 1
                day = record_day(final, self.zone)
                if not is_retained(day, today=today, retention_days=self.config.retention_days):
                    expired += 1
                    continue
                key = (LogType(str(final["type"])), day)
                if key not in targets:
                    targets[key] = self._append_target(*key)
                lines.setdefault(targets[key], []).append(encode(final))
                kept.append(final)
            try:
                self._write(batch.stream, batch.to, lines)
                self._streams[batch.stream] = {"offset": batch.to, "seen": today.isoformat()}
                self._save_streams()
                self._intent_path.unlink(missing_ok=True)
            except BaseException:
                # Whatever reached the disk is judged the way a restart judges it.
                self._recover()
                raise
            stored = sum(len(v) for v in lines.values())
            self.counters.stored += stored
            self.counters.duplicates += duplicates
            self.counters.expired += expired
            self.counters.batches += 1
            if self.observer is not None:
                for final in kept:
                    self.observer(final, now)
            return IngestResult(
                acked=batch.to, stored=stored, duplicates=duplicates, expired=expired
            )

    def _append_target(self, log_type: LogType, day: date) -> Path:
        """The open segment of a day, or the name of a new one after the last segment."""
        directory = layout.day_dir(self.root, log_type, day)
        segments = layout.readable_segments(list(directory.iterdir())) if directory.exists() else []
        if segments and segments[-1].state is SegmentState.OPEN:
            return segments[-1].path
        seq = segments[-1].seq + 1 if segments else 1
        return layout.segment_path(directory, seq, SegmentState.OPEN)

    def _write(self, stream: str, to: int, lines: dict[Path, list[bytes]]) -> None:
        if not lines:
            return
        sizes = {str(p): (p.stat().st_size if p.exists() else -1) for p in lines}
        write_json_atomic(self._intent_path, {"stream": stream, "to": to, "files": sizes})
        new_dirs: set[Path] = set()
        for path, chunk in lines.items():
            if sizes[str(path)] < 0:
                if not path.parent.exists():
                    path.parent.mkdir(parents=True)
                    new_dirs.add(path.parent.parent)
                new_dirs.add(path.parent)
            with path.open("ab") as out:
                out.write(b"".join(chunk))
                out.flush()
                os.fsync(out.fileno())
        for directory in new_dirs:
            fsync_dir(directory)

    def _save_streams(self) -> None:
        write_json_atomic(self._streams_path, {"version": STATE_VERSION, "streams": self._streams})

    def acked(self, stream: str) -> int:
        with self._lock:
            return self._acked(stream)

    # ------------------------------------------------------------------ maintenance
    def days(self, log_type: LogType) -> list[date]:
        type_dir = self.root / log_type.value
        found = [layout.parse_day(p.name) for p in type_dir.iterdir() if p.is_dir()]
        return sorted(d for d in found if d is not None)

    def maintain(self, *, now: datetime) -> None:
        """Delete days out of the retention window (none under a legal hold), then compress the
        segments of days that ended more than `close_grace` ago. Call it periodically (and at
        start)."""
        today = self.today(now)
        with self._lock:
            for log_type in () if self.config.legal_hold else LogType:
                for day in expired_days(
                    self.days(log_type), today=today, retention_days=self.config.retention_days
                ):
                    self._delete_day(log_type, day)
            first = first_retained_day(today=today, retention_days=self.config.retention_days)
            forget = (first - timedelta(days=STREAM_MEMORY_DAYS)).isoformat()
            stale = [s for s, e in self._streams.items() if str(e.get("seen", "")) < forget]
            if stale:
                for stream in stale:
                    del self._streams[stream]
                self._save_streams()
            sealed = self._seal_closable(now)
        for segment in sealed:
            self._compress(segment)

    def _delete_day(self, log_type: LogType, day: date) -> None:
        directory = layout.day_dir(self.root, log_type, day)
        doomed = directory.with_name(f"{layout.DELETING_PREFIX}{day.isoformat()}")
        os.replace(directory, doomed)
        fsync_dir(directory.parent)
        shutil.rmtree(doomed)
        self.counters.deleted_days += 1

    def _seal_closable(self, now: datetime) -> list[Segment]:
        sealed: list[Segment] = []
        for log_type in LogType:
            for day in closable_days(
                self.days(log_type), now=now, grace=self.config.close_grace, zone=self.zone
            ):
                directory = layout.day_dir(self.root, log_type, day)
                for segment in layout.readable_segments(list(directory.iterdir())):
                    if segment.state is SegmentState.CLOSED:
                        continue
                    if segment.state is SegmentState.OPEN:
                        target = layout.segment_path(directory, segment.seq, SegmentState.SEALED)
                        os.replace(segment.path, target)
                        fsync_dir(directory)
                        segment = Segment(segment.seq, SegmentState.SEALED, target)
                    sealed.append(segment)
        return sealed

    def _compress(self, segment: Segment) -> None:
        directory = segment.path.parent
        target = layout.segment_path(directory, segment.seq, SegmentState.CLOSED)
        tmp = target.with_name(target.name + ".tmp")
        with segment.path.open("rb") as source, tmp.open("wb") as raw:
            with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0) as out:
                shutil.copyfileobj(source, out, CHUNK)
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(tmp, target)
        fsync_dir(directory)
        segment.path.unlink()
        self.counters.compressed_segments += 1

    # ------------------------------------------------------------------ reading
    def snapshot(self, log_type: LogType, first: date, last: date) -> list[DaySnapshot]:
        """Open every segment of the days `first`..`last` (inclusive) that have records. The
        files stay readable whatever happens to them afterwards (compression, retention);
        open segments are read up to their size now: whole records only."""
        days: list[DaySnapshot] = []
        with self._lock:
            for day in self.days(log_type):
                if not first <= day <= last:
                    continue
                directory = layout.day_dir(self.root, log_type, day)
                snap = DaySnapshot(log_type, day)
                for segment in layout.readable_segments(list(directory.iterdir())):
                    handle = segment.path.open("rb")
                    size = os.fstat(handle.fileno()).st_size
                    snap.parts.append(Part(handle, size, segment.compressed))
                if snap.parts:
                    days.append(snap)
        return days

    def day_sizes(self, log_type: LogType) -> list[dict[str, object]]:
        with self._lock:
            out: list[dict[str, object]] = []
            for day in self.days(log_type):
                segments = layout.readable_segments(
                    list(layout.day_dir(self.root, log_type, day).iterdir())
                )
                out.append(
                    {
                        "day": day.isoformat(),
                        "bytes": sum(s.path.stat().st_size for s in segments),
                        "compressed": all(s.compressed for s in segments),
                    }
                )
            return out
