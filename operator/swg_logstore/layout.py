"""File names on the log volume.

    <root>/<type>/<YYYY-MM-DD>/<seq>.jsonl         a segment still open for appends
    <root>/<type>/<YYYY-MM-DD>/<seq>.jsonl.sealed  no more appends, being compressed
    <root>/<type>/<YYYY-MM-DD>/<seq>.jsonl.gz      a closed (compressed) segment
    <root>/state/streams.json                   acknowledged offset of every shipping stream
    <root>/state/intent.json                    the undo record of the batch being written

A day is the concatenation of its segments in `seq` order. Normally a day has one segment;
records that arrive after the day was compressed open a new one. Concatenated gzip members are
one valid gzip file, so a day's closed segments are downloaded as one `.jsonl.gz`.

Pure: names and parsing only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from enum import IntEnum
from pathlib import Path
from typing import Final

from swg_logstore.formats import LogType

OPEN_SUFFIX: Final = ".jsonl"
SEALED_SUFFIX: Final = ".jsonl.sealed"
CLOSED_SUFFIX: Final = ".jsonl.gz"
STATE_DIR: Final = "state"
STREAMS_FILE: Final = "streams.json"
INTENT_FILE: Final = "intent.json"
DELETING_PREFIX: Final = ".deleting-"

_SEGMENT = re.compile(r"^(\d{6})\.jsonl(\.gz|\.sealed)?$")
_DAY = re.compile(r"^\d{4}-\d\d-\d\d$")


class SegmentState(IntEnum):
    OPEN = 0
    SEALED = 1
    CLOSED = 2


@dataclass(frozen=True, order=True)
class Segment:
    seq: int
    state: SegmentState
    path: Path

    @property
    def compressed(self) -> bool:
        return self.state is SegmentState.CLOSED


def day_dir(root: Path, log_type: LogType, day: date) -> Path:
    return root / log_type.value / day.isoformat()


_SUFFIX: Final = {
    SegmentState.OPEN: OPEN_SUFFIX,
    SegmentState.SEALED: SEALED_SUFFIX,
    SegmentState.CLOSED: CLOSED_SUFFIX,
}


def segment_path(directory: Path, seq: int, state: SegmentState) -> Path:
    return directory / f"{seq:06d}{_SUFFIX[state]}"


def parse_day(name: str) -> date | None:
    if not _DAY.match(name):
        return None
    try:
        return date.fromisoformat(name)
    except ValueError:
        return None


def parse_segment(path: Path) -> Segment | None:
    match = _SEGMENT.match(path.name)
    if not match:
        return None
    suffix = match.group(2)
    state = {None: SegmentState.OPEN, ".sealed": SegmentState.SEALED}.get(
        suffix, SegmentState.CLOSED
    )
    return Segment(seq=int(match.group(1)), state=state, path=path)


def readable_segments(paths: list[Path]) -> list[Segment]:
    """The segments of one day to read, in order: for each `seq` the compressed file when it
    exists (a crash can leave the raw one beside it), else the raw one."""
    best: dict[int, Segment] = {}
    for path in paths:
        segment = parse_segment(path)
        if segment is None:
            continue
        known = best.get(segment.seq)
        if known is None or segment.state > known.state:
            best[segment.seq] = segment
    return [best[seq] for seq in sorted(best)]


def download_name(log_type: LogType, day: date) -> str:
    """Member name of a day in a tar download."""
    return f"{log_type.value}/{log_type.value}-{day.isoformat()}{CLOSED_SUFFIX}"
