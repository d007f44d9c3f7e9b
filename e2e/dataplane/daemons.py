"""The daemons of a data-plane stack (`e2e.dataplane.stack`): which entrypoint each runs in which
pod, a running one (its output, its stop), and the probes and helpers the stack starts them with:
a configuration file's directives, an address in one, a readable copy of a tree, clamd's ping and
a TCP connect."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


class DaemonStartError(RuntimeError):
    pass


@dataclass(frozen=True)
class DaemonSpec:
    name: str
    pod: str  # which state directory (one per pod)
    argv: tuple[str, ...]
    conf: Path | None = None  # the configuration mounted at CONF; None: the stack's own
    # A daemon of the host's own packages (the customer's LDAP directory): run in the stack's
    # namespace as it is, without the chroot and mounts of a pod.
    host: bool = False


DAEMONS = {
    "clamd": DaemonSpec("clamd", "antivirus", ("/usr/local/bin/swg-antivirus-entrypoint", "clamd")),
    "c-icap": DaemonSpec(
        "c-icap", "antivirus", ("/usr/local/bin/swg-antivirus-entrypoint", "c-icap")
    ),
    "squid": DaemonSpec("squid", "proxy", ("/usr/local/bin/swg-proxy-entrypoint",)),
}


class Daemon:
    """A running daemon; its stdout and stderr go to ``<logs>/<name>.out`` and ``.err``."""

    def __init__(
        self, spec: DaemonSpec, process: subprocess.Popen[bytes], stdout: Path, stderr: Path
    ) -> None:
        self.spec = spec
        self.process = process
        self.stdout = stdout
        self.stderr = stderr

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        parts = []
        for path in (self.stderr, self.stdout):
            text = path.read_text(errors="replace") if path.exists() else ""
            parts.append(f"--- {path.name}\n" + "\n".join(text.splitlines()[-lines:]))
        return "\n".join(parts)

    def stop(self, *, timeout: float = 60.0, sig: signal.Signals = signal.SIGTERM) -> float:
        """Send ``sig`` (SIGTERM: the graceful stop Kubernetes does), wait; SIGKILL the process
        group after ``timeout``. Returns the seconds it took."""
        started = time.monotonic()
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        # helpers (Squid's certificate generators) share the process group
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        return time.monotonic() - started


def spawn(spec: DaemonSpec, argv: list[str], logs: Path, *, owner: int) -> Daemon:
    """Start ``argv`` as ``spec``'s daemon in a session of its own, its stdout and stderr
    appended to ``<logs>/<spec name>.out`` and ``.err``, files owned by ``owner`` (daemons
    reopen /dev/stdout and /dev/stderr, Squid's logs, as their own files)."""
    stdout, stderr = logs / f"{spec.name}.out", logs / f"{spec.name}.err"
    for path in (stdout, stderr):
        path.touch()
        os.chown(path, owner, owner)
    with stdout.open("ab") as out, stderr.open("ab") as err:
        process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, start_new_session=True
        )
    return Daemon(spec, process, stdout, stderr)


def directive(conf: Path, name: str) -> list[str]:
    """Arguments of every ``name`` line of a Squid / c-icap / clamd style configuration file."""
    found: list[str] = []
    for line in conf.read_text().splitlines():
        parts = line.split()
        if parts and parts[0] == name:
            found.append(" ".join(parts[1:]))
    return found


def host_port(value: str, default_host: str = "127.0.0.1") -> tuple[str, int]:
    match = re.fullmatch(r"(?:\[?([0-9a-fA-F.:]+?)\]?:)?(\d+)", value.split()[0])
    if not match:
        raise ValueError(f"cannot read an address from {value!r}")
    return match.group(1) or default_host, int(match.group(2))


def copy_tree(src: Path, dst: Path) -> None:
    """Copy with modes the non-root daemons can read (0755 directories, 0644 files)."""
    dst.mkdir(parents=True, exist_ok=True)
    dst.chmod(0o755)
    for item in sorted(src.iterdir()):
        if item.is_dir():
            copy_tree(item, dst / item.name)
        else:
            shutil.copyfile(item, dst / item.name)
            (dst / item.name).chmod(0o644)


def unix_ping(path: Path) -> bool:
    # Through /proc/self/fd so that long temporary paths fit in sun_path.
    try:
        dir_fd = os.open(path.parent, os.O_PATH)
    except FileNotFoundError:
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(2)
            sock.connect(f"/proc/self/fd/{dir_fd}/{path.name}")
            sock.sendall(b"zPING\0")
            return sock.recv(16).startswith(b"PONG")
    except OSError:
        return False
    finally:
        os.close(dir_fd)


def tcp_open(address: tuple[str, int]) -> bool:
    try:
        with socket.create_connection(address, timeout=1):
            return True
    except OSError:
        return False
