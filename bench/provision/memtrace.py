"""`swg-operator` under tracemalloc, for the provisioning benchmark's memory profile.

`python -m bench.provision.memtrace OUT -- run ARGS...` runs the operator's command line with
tracemalloc on (frames kept: 12); SIGUSR1 writes a snapshot to OUT. tracemalloc slows the
process down and costs memory of its own: the figures of a traced run are for telling where
memory goes, not for the benchmark's RSS.

The peak of traced memory since the start is written beside it (OUT.json): the snapshot holds
what is live when it is taken, the peak what the busiest moment held. What the peak held is
written to OUT.peak: every `PEAK_POLL` seconds a thread looks at the traced memory and, once it
exceeds the last peak snapshot's by `PEAK_STEP`, takes another. So it holds the most seen at a
poll, within that step; a spike shorter than the polls is missed (the true peak, in OUT.json,
can be higher: 188.7 MiB against a snapshot of 92.7 in a 300-tenant run).

`summarise(OUT)` groups the live allocations of a snapshot by the most recent frame of the
operator, of kopf or of aiohttp that made them (file and line).
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
import tracemalloc
from pathlib import Path
from types import FrameType
from typing import Any

FRAMES = 12
PEAK_POLL = 1.0  # seconds
PEAK_STEP = 1.05  # a new peak snapshot once traced memory grew by 5 % over the last one
_MIB = 1024 * 1024
_OWNERS = ("swg_operator/", "kopf/", "aiohttp/")


def _owner(trace: tracemalloc.Traceback) -> str:
    """The most recent frame of the operator, kopf or aiohttp that led to the allocation (the
    code that can act on it), else the allocation site itself."""
    frames = list(trace)[::-1]  # a Traceback runs from the oldest frame to the most recent
    for frame in frames:
        for owner in _OWNERS:
            if owner in frame.filename:
                tail = frame.filename[frame.filename.index(owner) :]
                return f"{tail}:{frame.lineno}"
    frame = frames[0]
    return f"{Path(frame.filename).name}:{frame.lineno}"


def summarise(path: Path, *, top: int = 20) -> dict[str, Any]:
    snapshot = tracemalloc.Snapshot.load(str(path))
    total = 0
    by_owner: dict[str, int] = {}
    by_package: dict[str, int] = {}
    for stat in snapshot.statistics("traceback"):
        total += stat.size
        owner = _owner(stat.traceback)
        by_owner[owner] = by_owner.get(owner, 0) + stat.size
        package = owner.split("/")[0] if "/" in owner else "other"
        by_package[package] = by_package.get(package, 0) + stat.size
    ranked = sorted(by_owner.items(), key=lambda kv: -kv[1])[:top]
    sidecar = Path(f"{path}.json")
    traced = json.loads(sidecar.read_text()) if sidecar.exists() else {}
    return {
        "tracedMiB": round(total / _MIB, 1),
        "tracedPeakMiB": round(traced.get("peakBytes", 0) / _MIB, 1),
        "byPackageMiB": {
            k: round(v / _MIB, 1) for k, v in sorted(by_package.items(), key=lambda kv: -kv[1])
        },
        "topMiB": [(k, round(v / _MIB, 2)) for k, v in ranked],
    }


def _write_traced(snapshot: Path, current: int, peak: int) -> None:
    """The sidecar `summarise` reads beside a snapshot."""
    Path(f"{snapshot}.json").write_text(json.dumps({"currentBytes": current, "peakBytes": peak}))


def peak_snapshot(out: Path) -> Path:
    return Path(f"{out}.peak")


def _follow_peak(path: Path) -> None:
    taken = 0
    while True:
        time.sleep(PEAK_POLL)
        current, _ = tracemalloc.get_traced_memory()
        if current > taken * PEAK_STEP:
            tracemalloc.take_snapshot().dump(f"{path}.tmp")
            Path(f"{path}.tmp").replace(path)
            _, peak = tracemalloc.get_traced_memory()
            _write_traced(path, current, peak)
            taken = current


def main() -> int:
    out = Path(sys.argv[1])
    args = sys.argv[3:] if sys.argv[2:3] == ["--"] else sys.argv[2:]
    tracemalloc.start(FRAMES)

    def dump(_signum: int, _frame: FrameType | None) -> None:
        _write_traced(out, *tracemalloc.get_traced_memory())
        tracemalloc.take_snapshot().dump(str(out))

    signal.signal(signal.SIGUSR1, dump)
    threading.Thread(target=_follow_peak, args=(peak_snapshot(out),), daemon=True).start()
    from swg_operator.cli import main as operator_main

    return operator_main(args)


if __name__ == "__main__":
    sys.exit(main())
