"""Starting and stopping the control plane's daemons as process groups that outlive the launcher.

Each daemon runs in its own session (setsid), so a signal to its process group reaches anything it
forks, and `down` (a different process from the one that ran `up`) can stop it from a pid file.
A pid is only trusted together with the process start time read from /proc, so a recycled pid
never gets a signal meant for a daemon that is long gone.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ProcessRecord:
    """One running daemon as written to the state file."""

    name: str
    pid: int
    start_ticks: int

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "pid": self.pid, "start_ticks": self.start_ticks}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> ProcessRecord:
        pid, ticks = data["pid"], data["start_ticks"]
        assert isinstance(pid, int)
        assert isinstance(ticks, int)
        return cls(name=str(data["name"]), pid=pid, start_ticks=ticks)


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    return [raw[: raw.index(" ")], "comm", *raw[raw.rindex(")") + 2 :].split()]


def start_ticks(pid: int) -> int | None:
    """Process start time in clock ticks since boot (field 22 of /proc/<pid>/stat)."""
    fields = _stat_fields(pid)
    return int(fields[21]) if fields else None


def is_alive(record: ProcessRecord) -> bool:
    """True while the recorded process runs; zombies and recycled pids count as gone."""
    fields = _stat_fields(record.pid)
    if fields is None or fields[2] in ("Z", "X"):
        return False
    return int(fields[21]) == record.start_ticks


def describe(
    names: Sequence[str], records: Sequence[ProcessRecord], logs_dir: Path
) -> dict[str, str]:
    """Each named process's state for a status report: not started, running or dead (with its
    log, `<logs_dir>/<name>.log`)."""
    by_name = {r.name: r for r in records}
    report: dict[str, str] = {}
    for name in names:
        record = by_name.get(name)
        if record is None:
            report[name] = "not started"
        elif is_alive(record):
            report[name] = f"running (pid {record.pid})"
        else:
            report[name] = f"dead (was pid {record.pid}; see {logs_dir / name}.log)"
    return report


def spawn(
    name: str, argv: Sequence[str], *, log_path: Path, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], ProcessRecord]:
    """Start `argv` in a new session with stdout and stderr appended to `log_path`."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
            close_fds=True,
        )
    ticks = start_ticks(proc.pid)
    if ticks is None:  # exited already; the caller sees it die and reports the log
        ticks = -1
    return proc, ProcessRecord(name=name, pid=proc.pid, start_ticks=ticks)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def _reap(children: dict[int, subprocess.Popen[bytes]]) -> None:
    for proc in children.values():
        proc.poll()


def stop(
    records: Sequence[ProcessRecord],
    *,
    timeout: float = 15.0,
    children: dict[int, subprocess.Popen[bytes]] | None = None,
) -> list[ProcessRecord]:
    """SIGTERM each process group, SIGKILL what is left after `timeout`; return the survivors.

    `children` are the Popen objects when the caller started the processes itself, so they are
    reaped instead of lingering as zombies.
    """
    own = children or {}
    live = [r for r in records if is_alive(r)]
    for record in live:
        _signal_group(record.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while live and time.monotonic() < deadline:
        _reap(own)
        live = [r for r in live if is_alive(r)]
        if live:
            time.sleep(0.1)
    for record in live:
        _signal_group(record.pid, signal.SIGKILL)
    deadline = time.monotonic() + 5.0
    while live and time.monotonic() < deadline:
        _reap(own)
        live = [r for r in live if is_alive(r)]
        if live:
            time.sleep(0.1)
    for proc in own.values():
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=0.5)
    return live


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def find_strays(marker: str, names: Sequence[str]) -> list[ProcessRecord]:
    """Live processes named like one of `names` whose arguments mention `marker` (a state dir).

    Finds daemons whose pid file was lost (a killed launcher, a deleted state file).
    """
    found: list[ProcessRecord] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        argv = _cmdline(pid)
        if not argv or Path(argv[0]).name not in names:
            continue
        if any(marker in arg for arg in argv[1:]):
            ticks = start_ticks(pid)
            record = ProcessRecord(Path(argv[0]).name, pid, ticks if ticks is not None else -1)
            if ticks is not None and is_alive(record):
                found.append(record)
    return found


def free_ports(count: int) -> list[int]:
    """`count` distinct TCP ports free on 127.0.0.1 (held together so none repeats)."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind(("127.0.0.1", 0))
            ports.append(sock.getsockname()[1])
        return ports


def _socket_inodes(pid: int) -> Iterator[int]:
    fd_dir = Path(f"/proc/{pid}/fd")
    with contextlib.suppress(FileNotFoundError, PermissionError):
        for fd in fd_dir.iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    yield int(target[len("socket:[") : -1])


def _decode_address(hex_addr: str) -> str:
    host, port = hex_addr.split(":")
    if len(host) == 8:  # IPv4, little-endian
        octets = bytes.fromhex(host)[::-1]
        ip = ".".join(str(b) for b in octets)
    else:  # IPv6: four little-endian 32-bit words
        words = [bytes.fromhex(host[i : i + 8])[::-1] for i in range(0, 32, 8)]
        raw = b"".join(words)
        ip = socket.inet_ntop(socket.AF_INET6, raw)
    return f"{ip}:{int(port, 16)}"


def listening_addresses(pid: int) -> list[str]:
    """TCP addresses (ip:port) the process listens on, read from /proc; no tools needed."""
    inodes = set(_socket_inodes(pid))
    listening = []
    for table in ("tcp", "tcp6"):
        path = Path(f"/proc/{pid}/net/{table}")
        with contextlib.suppress(FileNotFoundError):
            for line in path.read_text().splitlines()[1:]:
                cols = line.split()
                if cols[3] == "0A" and int(cols[9]) in inodes:  # 0A = LISTEN
                    listening.append(_decode_address(cols[1]))
    return sorted(listening)
