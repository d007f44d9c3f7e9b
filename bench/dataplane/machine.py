"""What the figures were measured on: machine, load and software versions."""

from __future__ import annotations

import os
import platform
import re
import subprocess
from pathlib import Path
from typing import Any

from devtools import rootfs

# Packages of the trixie rootfs (the images' package lists) whose versions the results name.
ROOTFS_PACKAGES = ("squid-openssl", "c-icap", "libc-icap-mod-virus-scan", "clamav-daemon")


def _first(pattern: str, text: str) -> str:
    match = re.search(pattern, text, re.M)
    return match.group(1).strip() if match else "unknown"


def machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    meminfo = Path("/proc/meminfo").read_text()
    os_release = Path("/etc/os-release").read_text()
    return {
        "nproc": os.cpu_count(),
        "cpuModel": _first(r"^model name\s*:\s*(.*)$", cpuinfo),
        "memoryBytes": int(_first(r"^MemTotal:\s*(\d+) kB", meminfo)) * 1024,
        "kernel": platform.release(),
        "hostOs": _first(r'^PRETTY_NAME="?([^"\n]*)"?', os_release),
    }


def load_average() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def _chroot_output(root: Path, argv: list[str]) -> str:
    """A version banner from the rootfs (chroot only: no network, no daemon)."""
    proc = subprocess.run(
        ["chroot", str(root), *argv], capture_output=True, text=True, check=False, timeout=60
    )
    return (proc.stdout + proc.stderr).strip()


def versions(root: Path, *, wrk: str, nginx: str) -> dict[str, Any]:
    packages = rootfs.expected_rootfs().versions()
    squid = _chroot_output(root, ["/usr/sbin/squid", "-v"]).splitlines()
    return {
        "squid": squid[0] if squid else "unknown",
        "cIcap": _chroot_output(root, ["/usr/bin/c-icap", "-V"]).splitlines()[0],
        "clamd": _chroot_output(root, ["/usr/sbin/clamd", "--version"]).splitlines()[0],
        "wrk": wrk,
        "nginx": nginx,
        "rootfsPackages": {name: packages.get(name, "absent") for name in ROOTFS_PACKAGES},
        "rootfsKey": rootfs.expected_rootfs().entry.name,
    }
