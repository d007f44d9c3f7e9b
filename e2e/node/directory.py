"""The node tier's LDAP directory: a customer's OpenLDAP, played by a real ``slapd`` with the
data-plane tier's entries and configuration (`e2e.dataplane.directory`: the same users, groups
and passwords, TLS only), serving LDAPS on the test origin's address (`e2e.node.origin`).

It runs on this machine in the origin's network namespace (reachable from the pod bridge only,
no route off the machine). slapd is the host's Debian package (as in the data-plane tier: the
images' root filesystem has none), started with `e2e.dataplane.daemons.spawn` under ``nsenter``
into that namespace. Its certificate names DIRECTORY_HOST (which the cluster's DNS resolves to
the origin while `e2e.node.sites.public_names` lasts) and is issued by a private CA of its own,
in no bundle: a proxy trusts it only through `authentication.ldap.caSecret`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from e2e.cluster import wait_until
from e2e.dataplane.daemons import Daemon, DaemonSpec, spawn, tcp_open
from e2e.dataplane.directory import slapd_argv, write_directory
from e2e.dataplane.pki import private_ca_server
from e2e.node.origin import ORIGIN_IP, OriginNamespace

DIRECTORY_HOST: Final = "directory.customer.test"
LDAPS_PORT: Final = 636
DIRECTORY_URL: Final = f"ldaps://{DIRECTORY_HOST}"
START_TIMEOUT: Final = 60.0


class NodeDirectory:
    """slapd on ORIGIN_IP:LDAPS_PORT; :meth:`start` and :meth:`stop` as often as needed."""

    def __init__(self, ns: OriginNamespace, workdir: Path) -> None:
        self.ns = ns
        self.logs = workdir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        ca, cert, key = private_ca_server(workdir / "ca", sans=[f"DNS:{DIRECTORY_HOST}"])
        key.chmod(0o600)
        self.ca_pem = ca.read_text()
        self.conf = write_directory(workdir / "slapd", cert, key)
        self.daemon: Daemon | None = None

    def listening(self) -> bool:
        return self.ns.call(lambda: tcp_open((ORIGIN_IP, LDAPS_PORT)))

    def start(self) -> None:
        argv = slapd_argv(self.conf, f"ldaps://{ORIGIN_IP}:{LDAPS_PORT}/")
        spec = DaemonSpec("slapd", "directory", argv, host=True)
        daemon = spawn(spec, self.ns.argv(list(argv)), self.logs, owner=0)
        self.daemon = daemon

        def up() -> bool:
            if not daemon.alive:
                raise RuntimeError(
                    f"slapd exited with {daemon.process.returncode}:\n{daemon.log_tail()}"
                )
            return self.listening()

        wait_until(up, timeout=START_TIMEOUT, what="slapd on the origin's address")

    def stop(self) -> None:
        if self.daemon is not None:
            self.daemon.stop(timeout=10)
            self.daemon = None
        wait_until(lambda: not self.listening(), timeout=30, what="slapd stopped")
