"""What a benchmark ran on (machine, load, versions) and what a process costs (from /proc)."""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
MIB = 1024 * 1024


def _first(pattern: str, text: str) -> str:
    match = re.search(pattern, text, re.M)
    return match.group(1).strip() if match else "unknown"


def machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    meminfo = Path("/proc/meminfo").read_text()
    return {
        "nproc": os.cpu_count(),
        "cpuModel": _first(r"^model name\s*:\s*(.*)$", cpuinfo),
        "memoryBytes": int(_first(r"^MemTotal:\s*(\d+) kB", meminfo)) * 1024,
        "kernel": platform.release(),
    }


def load_average() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def today() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d")


def git_commit(repo: Path) -> str:
    found = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    )
    return found.stdout.strip() or "unknown"


def versions(repo: Path) -> dict[str, str]:
    from devtools.binaries import pinned_versions

    from swg_operator import __version__

    pinned = pinned_versions()
    return {
        "kubernetes": pinned["K8S_VERSION"],
        "etcd": pinned["ETCD_VERSION"],
        "kwok": pinned["KWOK_VERSION"],
        "kopf": importlib.metadata.version("kopf"),
        "aiohttp": importlib.metadata.version("aiohttp"),
        "python": platform.python_version(),
        "operator": __version__,
        "commit": git_commit(repo),
        "operatorSourceClean": "yes" if operator_source_clean(repo) else "no (uncommitted changes)",
    }


def operator_source_clean(repo: Path) -> bool:
    """No uncommitted change under operator/ (the figures are those of the commit above)."""
    found = subprocess.run(
        ["git", "-C", str(repo), "status", "--porcelain", "--", "operator"],
        capture_output=True,
        text=True,
        check=False,
    )
    return found.returncode == 0 and not found.stdout.strip()


@dataclass(frozen=True)
class ProcSample:
    cpu_seconds: float  # utime + stime of the process (its threads included)
    rss_bytes: int  # VmRSS now
    peak_rss_bytes: int  # VmHWM: the highest RSS so far


def sample(pid: int) -> ProcSample | None:
    """CPU and memory of process `pid`, None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime (stat fields 14 and 15)

    def kib(key: str) -> int:
        return int(_first(rf"^{key}:\s*(\d+) kB", status)) * 1024

    return ProcSample(ticks / CLOCK_TICKS, kib("VmRSS"), kib("VmHWM"))
