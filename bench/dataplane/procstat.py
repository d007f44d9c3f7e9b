"""CPU seconds and memory of process trees, from /proc.

A daemon of the harness is a tree (nsenter, the entrypoint shell, the daemon, its children).
CPU is counted over the whole tree as utime+stime of every live process plus cutime+cstime
(children already reaped by their parent), so a child that exits during a measurement is still
counted once.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class ProcStat:
    pid: int
    ppid: int
    comm: str
    ticks: int  # utime + stime + cutime + cstime


def read_stat(pid: int) -> ProcStat | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # comm may contain spaces and parentheses: it ends at the last ')'.
    head, _, rest = text.rpartition(")")
    comm = head.split("(", 1)[1]
    fields = rest.split()
    # fields[0] is state (stat field 3): utime is field 14, so fields[11]..fields[14].
    utime, stime, cutime, cstime = (int(v) for v in fields[11:15])
    return ProcStat(pid, int(fields[1]), comm, utime + stime + cutime + cstime)


def all_stats() -> list[ProcStat]:
    stats = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = read_stat(int(entry))
            if stat is not None:
                stats.append(stat)
    return stats


def tree(root: int, stats: Iterable[ProcStat] | None = None) -> list[ProcStat]:
    """`root` and its live descendants."""
    stats = list(all_stats() if stats is None else stats)
    children: dict[int, list[ProcStat]] = {}
    found: list[ProcStat] = []
    for stat in stats:
        children.setdefault(stat.ppid, []).append(stat)
        if stat.pid == root:
            found.append(stat)
    queue = list(found)
    while queue:
        for child in children.get(queue.pop().pid, []):
            found.append(child)
            queue.append(child)
    return found


def cpu_seconds(roots: Iterable[int]) -> float:
    """CPU seconds used so far by the trees under `roots` (see the module docstring)."""
    stats = all_stats()
    ticks = sum(stat.ticks for root in roots for stat in tree(root, stats))
    return ticks / CLOCK_TICKS


def pids_named(root: int, comm: str) -> list[int]:
    return [stat.pid for stat in tree(root) if stat.comm == comm]


@dataclass(frozen=True)
class Memory:
    rss_bytes: int  # sum of VmRSS (shared pages counted in each process)
    pss_bytes: int  # sum of Pss (shared pages divided among the processes)
    hwm_bytes: int  # sum of VmHWM (peak RSS of each process)
    processes: int


def _status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def _pss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return 0


def memory(pids: Iterable[int]) -> Memory:
    rss = pss = hwm = count = 0
    for pid in pids:
        try:
            rss += _status_kib(pid, "VmRSS")
            hwm += _status_kib(pid, "VmHWM")
            pss += _pss_kib(pid)
            count += 1
        except (FileNotFoundError, ProcessLookupError):
            continue
    return Memory(rss * 1024, pss * 1024, hwm * 1024, count)
