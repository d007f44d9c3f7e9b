"""A loopback-only network namespace for one data-plane stack.

Everything that sends or receives a packet in the data-plane tier lives in such a namespace: the
daemons and the test clients are started through :meth:`NetNamespace.argv` (``nsenter``), and
in-process sockets (the origin server, readiness probes) are created by :meth:`NetNamespace.call`
on a worker thread that has joined the namespace. The namespace has one interface, ``lo``, and
no route off the machine, so even a wrong ACL cannot send a packet anywhere: a leak shows up as a
connection error. Creation checks that; :func:`cleanup_stale` removes namespaces (and kills
their processes) left by a test session that died.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

CLONE_NEWNET = 0x40000000
NETNS_DIR = Path("/run/netns")
PREFIX = "swg-dp-"

_libc = ctypes.CDLL(None, use_errno=True)


class IsolationError(RuntimeError):
    """The namespace is not loopback-only: the tier refuses to run."""


def _ip(*args: str) -> str:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout


def join(path: str) -> None:
    """Move the calling thread into the network namespace at `path`."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({path}): {os.strerror(err)}")
    finally:
        os.close(fd)


def _enter(path: str) -> None:
    join(path)
    names = sorted(name for _, name in socket.if_nameindex())
    if names != ["lo"]:
        raise IsolationError(f"worker thread sees interfaces {names}, expected only lo")


class NetNamespace:
    """A named namespace under /run/netns with only ``lo``, up."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.path = NETNS_DIR / name
        self._worker: ThreadPoolExecutor | None = None

    @classmethod
    def create(cls, label: str) -> NetNamespace:
        safe = re.sub(r"[^a-z0-9-]", "-", label.lower())[:20]
        ns = cls(f"{PREFIX}{os.getpid()}-{safe}-{os.urandom(3).hex()}")
        _ip("netns", "add", ns.name)
        try:
            _ip("-n", ns.name, "link", "set", "lo", "up")
            ns.check_isolated()
        except BaseException:
            ns.delete()
            raise
        return ns

    def check_isolated(self) -> None:
        links = _ip("-n", self.name, "-o", "link", "show").splitlines()
        names = [line.split(":")[1].strip().split("@")[0] for line in links if line.strip()]
        if names != ["lo"]:
            raise IsolationError(f"{self.name} has interfaces {names}, expected only lo")
        for family in ("-4", "-6"):
            routes = _ip("-n", self.name, family, "route", "show", "table", "all").splitlines()
            for route in routes:
                if "dev lo" not in route:
                    raise IsolationError(f"{self.name} has a route off loopback: {route}")

    def argv(self, argv: list[str]) -> list[str]:
        """The command line that runs ``argv`` inside the namespace."""
        return ["nsenter", f"--net={self.path}", "--", *argv]

    def call(self, fn: Callable[[], T], *, timeout: float = 60.0) -> T:
        """Run ``fn`` on a thread that has joined the namespace; sockets it creates live there."""
        if self._worker is None:
            self._worker = ThreadPoolExecutor(
                max_workers=1,
                thread_name_prefix=f"netns-{self.name}",
                initializer=_enter,
                initargs=(str(self.path),),
            )
        return self._worker.submit(fn).result(timeout=timeout)

    def pids(self) -> list[int]:
        try:
            out = _ip("netns", "pids", self.name)
        except RuntimeError:
            return []
        return [int(p) for p in out.split()]

    def delete(self) -> None:
        if self._worker is not None:
            self._worker.shutdown(wait=False, cancel_futures=True)
            self._worker = None
        kill_all(self.pids())
        with contextlib.suppress(RuntimeError):
            _ip("netns", "delete", self.name)


def kill_all(pids: list[int], *, grace: float = 5.0) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while pids and time.monotonic() < deadline:
        pids = [p for p in pids if _alive(p)]
        time.sleep(0.05)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie child of ours counts as gone.
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    return False


def cleanup_stale() -> list[str]:
    """Delete namespaces of earlier sessions whose pytest process is gone; return their names."""
    removed: list[str] = []
    if not NETNS_DIR.is_dir():
        return removed
    for entry in NETNS_DIR.iterdir():
        match = re.match(rf"{PREFIX}(\d+)-", entry.name)
        if not match or _alive(int(match.group(1))):
            continue
        NetNamespace(entry.name).delete()
        removed.append(entry.name)
    return removed
