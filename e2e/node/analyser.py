"""The node tier's sandbox analyser: a customer's external analysis service, played by a second,
real c-icap + clamd with a signature set of its own (as in the data-plane tier,
e2e/dataplane/analyser.py), serving ICAP over TLS on the test origin's address.

It runs on this machine in the origin's network namespace (`e2e.node.origin`: reachable from the
pod bridge only, no route off the machine), each daemon as a container of the anti-virus image
would run: in a private mount namespace of its own, chrooted into the data-plane tier's rootfs
(the images' packages), as UID 10001, with its configuration read-only at /etc/swg/conf and a
state directory at /var/lib/swg. Its configuration is the anti-virus pod's as `swg-operator
render` writes it, with the listener changed: TLS on ANALYSER_PORT with the origin's certificate
(which names ANALYSER_HOST), plus a plain port on 127.0.0.1 for the image's own engine check.
"""

from __future__ import annotations

import os
import shlex
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from e2e.dataplane.daemons import (
    Daemon,
    DaemonSpec,
    DaemonStartError,
    spawn,
    tcp_open,
    unix_ping,
)
from e2e.dataplane.stack import ENTRYPOINTS, GID, UID
from e2e.node.origin import ORIGIN_IP, OriginNamespace

ANALYSER_HOST = "analyser.sandbox.test"
ANALYSER_PORT = 11344
ANALYSER_URL = f"icaps://{ANALYSER_HOST}:{ANALYSER_PORT}/avscan"
CONF = "/etc/swg/conf"
STATE = "/var/lib/swg"
_ENTRYPOINT_NAME = next(n for n in ENTRYPOINTS if "antivirus" in n)
_ENTRYPOINT = f"/usr/local/bin/{_ENTRYPOINT_NAME}"
START_TIMEOUT = 90.0


class NodeAnalyser:
    """clamd and c-icap of the analyser; :meth:`start` and :meth:`stop` as often as needed."""

    def __init__(self, ns: OriginNamespace, rootfs: Path, conf: Path, workdir: Path) -> None:
        self.ns = ns
        self.rootfs = rootfs
        self.conf = conf
        self.workdir = workdir
        self.state = workdir / "state"
        self.logs = workdir / "logs"
        self.bin = workdir / "bin"
        self.daemons: dict[str, Daemon] = {}

    def _prepare(self) -> None:
        for directory in (self.state, self.logs, self.bin):
            directory.mkdir(parents=True, exist_ok=True)
        os.chown(self.state, UID, GID)
        self.state.chmod(0o750)
        self.bin.chmod(0o755)
        shutil.copyfile(ENTRYPOINTS[_ENTRYPOINT_NAME], self.bin / _ENTRYPOINT_NAME)
        (self.bin / _ENTRYPOINT_NAME).chmod(0o755)
        for mount_point in (CONF, STATE):
            (self.rootfs / mount_point.lstrip("/")).mkdir(parents=True, exist_ok=True)

    def _argv(self, command: str) -> list[str]:
        """nsenter (the origin's network) + unshare (a private mount namespace) + mounts +
        chroot, as a container of the anti-virus image."""
        q = shlex.quote
        root = str(self.rootfs)
        lines = [
            "set -eu",
            f"mount -o bind,ro {q(str(self.conf))} {q(root + CONF)}",
            f"mount -o bind {q(str(self.state))} {q(root + STATE)}",
            f"mount -o bind,ro {q(str(self.bin))} {q(root + '/usr/local/bin')}",
            f"mount -t proc proc {q(root + '/proc')}",
            f"mount -t tmpfs -o mode=1777,size=256m tmpfs {q(root + '/dev/shm')}",
            f"mount -t tmpfs -o mode=1777,size=256m tmpfs {q(root + '/tmp')}",
        ]
        env = {
            "PATH": "/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": STATE,
            "LANG": "C.UTF-8",
            "TZ": "UTC",
            "SWG_CONF_DIR": CONF,
            "SWG_STATE_DIR": STATE,
            "SWG_CLAMD_WAIT_SECONDS": "60",
        }
        chroot = [
            "chroot", f"--userspec={UID}:{GID}", f"--groups={GID}", root,
            "/usr/bin/env", "-i", *(f"{k}={v}" for k, v in env.items()), _ENTRYPOINT, command,
        ]  # fmt: skip
        lines.append("cd / && exec " + " ".join(q(a) for a in chroot))
        return self.ns.argv(["unshare", "--mount", "--", "sh", "-c", "\n".join(lines)])

    def _start(self, name: str) -> None:
        spec = DaemonSpec(name, "analyser", (_ENTRYPOINT, name), self.conf)
        self.daemons[name] = spawn(spec, self._argv(name), self.logs, owner=UID)

    def _wait(self, name: str, ready: Callable[[], bool]) -> None:
        daemon = self.daemons[name]
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if not daemon.alive:
                raise DaemonStartError(
                    f"analyser {name} exited with {daemon.process.returncode}:\n"
                    + daemon.log_tail()
                )
            if ready():
                return
            time.sleep(0.3)
        raise DaemonStartError(
            f"analyser {name} not ready in {START_TIMEOUT}s:\n" + daemon.log_tail()
        )

    def start(self) -> None:
        """clamd, then c-icap (which waits for clamd), each until it answers."""
        self._prepare()
        socket_path = self.state / "clamd" / "clamd.sock"
        self._start("clamd")
        self._wait("clamd", lambda: unix_ping(socket_path))
        self._start("c-icap")
        self._wait("c-icap", self.listening)

    def listening(self) -> bool:
        return self.ns.call(lambda: tcp_open((ORIGIN_IP, ANALYSER_PORT)))

    def stop(self) -> None:
        for name in ("c-icap", "clamd"):
            daemon = self.daemons.pop(name, None)
            if daemon is not None:
                daemon.stop(timeout=15)
