"""One data-plane stack: clamd, c-icap and Squid from a directory of configuration files, run
from the trixie rootfs the way the images run them, plus a test origin, in a loopback-only
network namespace.

How each daemon is started (what a pod gives its containers, reproduced with chroot):

* ``nsenter --net`` puts it in the stack's namespace;
* ``unshare --mount`` gives it a private mount namespace, in which the configuration directory
  is bind-mounted read-only at ``/etc/swg/conf``, the pod's state directory read-write at
  ``/var/lib/swg``, the inspection CA at ``/etc/swg/tls``, the directory bind Secret's file
  (``ldap_secret``, written by the tests that need it) at ``/etc/swg/ldap``, the directory's CA
  Secret's file (``ldap_ca``, likewise) at ``/etc/swg/ldap-ca``, the images' scripts at
  ``/usr/local/bin``, and ``/proc``, a tmpfs ``/dev/shm`` and ``/tmp`` are mounted. The mounts
  exist only in that namespace: they disappear with the daemon, whatever happens to the session;
* ``chroot --userspec=10001:10001`` runs the image's entrypoint as the images' non-root user.

A daemon of the host's own packages (``DaemonSpec.host``: the LDAP directory's slapd) runs in
the stack's namespace without the chroot.

The test names resolve through Squid's default ``hosts_file`` (``/etc/hosts``, provided by the
harness), and the origin CA is the only CA in the rootfs's system bundle, as the public CAs are
in production. The proxy and the anti-virus pod get separate state directories, as separate
pods get separate emptyDirs; clamd and c-icap share one, as their two containers do.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Unpack

from e2e.dataplane import client
from e2e.dataplane.daemons import (
    DAEMONS,
    Daemon,
    DaemonSpec,
    DaemonStartError,
    copy_tree,
    directive,
    host_port,
    spawn,
    tcp_open,
    unix_ping,
)
from e2e.dataplane.netns import NetNamespace
from e2e.dataplane.origin import Origin
from e2e.dataplane.payloads import Payload
from e2e.dataplane.pki import TestPki, make_pki
from swg_logstore.formats import SQUID_ACCESS_LOG_PATH

__all__ = ["DEFAULT_TEST_NAMES", "UID", "DaemonStartError", "DataplaneStack"]

REPO = Path(__file__).resolve().parents[2]
ENTRYPOINTS = {
    "swg-proxy-entrypoint": REPO / "images" / "proxy" / "entrypoint.sh",
    "swg-antivirus-entrypoint": REPO / "images" / "antivirus" / "entrypoint.sh",
    "swg-ldap-helper": REPO / "images" / "proxy" / "ldap-helper.sh",
}
UID = GID = 10001  # the images' user (images/*/Dockerfile)
CONF = "/etc/swg/conf"
STATE = "/var/lib/swg"
TLS = "/etc/swg/tls"
LDAP_SECRET = "/etc/swg/ldap"  # the directory bind Secret (render.context.LDAP_SECRET_DIR)
LDAP_CA = "/etc/swg/ldap-ca"  # the directory's CA Secret (render.context.LDAP_CA_DIR)
ACCESS_TLS = "/etc/swg/access-tls"
ORIGIN_ADDRESS = "127.0.0.2"

# Names every stack resolves to the origin unless told otherwise.
# Service names of the tenant namespace, as the pods resolve them: here, the loopback listeners.
DEFAULT_SERVICE_HOSTS = {"antivirus": "127.0.0.1", "logstore": "127.0.0.1"}
DEFAULT_TEST_NAMES = (
    "clean.test",
    "www.clean.test",
    "casino.test",
    "www.casino.test",
    "poker.test",
    "malware.test",
    "www.malware.test",
    "bypass.test",
    "www.bypass.test",
    "allowed.test",
    "denied.test",
    "noinspect.test",
)


class DataplaneStack:
    """Start with :meth:`start`; always :meth:`close` (the fixtures do)."""

    def __init__(
        self,
        *,
        rootfs: Path,
        conf_dir: Path,
        workdir: Path,
        payloads: Mapping[str, Payload],
        label: str = "stack",
        names: Iterable[str] = DEFAULT_TEST_NAMES,
        extra_hosts: Mapping[str, str] | None = None,
        daemons: Sequence[str] = ("clamd", "c-icap", "squid"),
        extra_conf: Iterable[Path] = (),
        resolv_search: Sequence[str] = (),
    ) -> None:
        self.rootfs = rootfs
        self.label = label
        self.workdir = workdir
        self.conf = workdir / "conf"
        self.payloads = dict(payloads)
        self.names = tuple(dict.fromkeys(names))
        self.hosts = (
            {name: ORIGIN_ADDRESS for name in self.names}
            | DEFAULT_SERVICE_HOSTS
            | dict(extra_hosts or {})
        )
        self.wanted = tuple(daemons)
        self.daemons: dict[str, Daemon] = {}
        # Daemons beyond the three (start_extra_daemon): spec and readiness check.
        self.extra: dict[str, tuple[DaemonSpec, Callable[[], bool]]] = {}
        self.netns: NetNamespace | None = None
        self.origin: Origin | None = None
        self.resolv_search = tuple(resolv_search)
        workdir.mkdir(parents=True, exist_ok=True)
        copy_tree(conf_dir, self.conf)
        # The anti-virus Service as squid.conf names it (fully qualified): the loopback listener.
        for service in directive(self.conf / "squid.conf", "icap_service"):
            match = re.search(r"icaps?://(antivirus\.[^:/]+)", service)
            if match:
                self.hosts.setdefault(match.group(1), DEFAULT_SERVICE_HOSTS["antivirus"])
        for path in extra_conf:  # what other ConfigMaps project beside it (signatures)
            shutil.copyfile(path, self.conf / path.name)
            (self.conf / path.name).chmod(0o644)
        self.pki: TestPki = make_pki(workdir / "pki", self.hosts)
        squid_conf = self.conf / "squid.conf"
        plain = directive(squid_conf, "http_port")
        tls = directive(squid_conf, "https_port")
        # The plain listener (None when the TLS listener is the only one) and the TLS one.
        self.plain_address = host_port(plain[0]) if plain else None
        self.tls_address = host_port(tls[0]) if tls else None
        first = self.plain_address or self.tls_address
        assert first is not None, "squid.conf opens no port"
        self.proxy_address = first
        icap_port = directive(self.conf / "c-icap.conf", "Port") if "c-icap" in daemons else []
        self.icap_address = host_port(icap_port[0]) if icap_port else None
        sockets = directive(self.conf / "clamd.conf", "LocalSocket") if "clamd" in daemons else []
        self.clamd_socket = self.host_path("antivirus", sockets[0]) if sockets else None

    # ------------------------------------------------------------------ paths
    def state_dir(self, pod: str) -> Path:
        return self.workdir / "state" / pod

    def host_path(self, pod: str, chroot_path: str) -> Path:
        """Where a path under /var/lib/swg of one pod's daemons is on the host."""
        relative = Path(chroot_path).relative_to(STATE)
        return self.state_dir(pod) / relative

    @property
    def ldap_secret(self) -> Path:
        """The bind Secret's directory, mounted read-only at LDAP_SECRET in the proxy pod."""
        return self.workdir / "ldap-secret"

    @property
    def ldap_ca(self) -> Path:
        """The directory's CA Secret's directory, mounted read-only at LDAP_CA in the proxy pod."""
        return self.workdir / "ldap-ca"

    @property
    def proxy(self) -> str:
        host, port = self.proxy_address
        return f"{host}:{port}"

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> DataplaneStack:
        try:
            self._prepare()
            self.netns = NetNamespace.create(self.label)
            self.origin = Origin(
                self.netns, self.payloads, cert=self.pki.origin_cert, key=self.pki.origin_key
            )
            for name in ("clamd", "c-icap", "squid"):
                if name in self.wanted:
                    self.start_daemon(name)
        except BaseException:
            self.close()
            raise
        return self

    def _prepare(self) -> None:
        for mount_point in (CONF, STATE, TLS, LDAP_SECRET, LDAP_CA, ACCESS_TLS):
            (self.rootfs / mount_point.lstrip("/")).mkdir(parents=True, exist_ok=True)
        (self.workdir / "logs").mkdir(exist_ok=True)
        bin_dir = self.workdir / "bin"
        bin_dir.mkdir(exist_ok=True)
        bin_dir.chmod(0o755)
        for name, source in ENTRYPOINTS.items():
            shutil.copyfile(source, bin_dir / name)
            (bin_dir / name).chmod(0o755)
        tls = self.workdir / "tls"
        copy_tree(self.pki.inspection_dir, tls)
        self.ldap_secret.mkdir(exist_ok=True)  # tests write the bind password into it
        self.ldap_secret.chmod(0o755)
        self.ldap_ca.mkdir(exist_ok=True)  # tests write the directory's CA into it
        self.ldap_ca.chmod(0o755)
        copy_tree(self.pki.access_dir, self.workdir / "access-tls")
        etc = self.workdir / "etc"
        etc.mkdir(exist_ok=True)
        hosts = ["127.0.0.1 localhost", "::1 localhost"]
        hosts += [f"{address} {name}" for name, address in sorted(self.hosts.items())]
        (etc / "hosts").write_text("\n".join(hosts) + "\n")
        # Unknown names fail on loopback at once instead of waiting for a resolver.
        # ``resolv_search``: a search list as a pod's resolv.conf has (ndots 5, as Kubernetes).
        resolv = "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n"
        if self.resolv_search:
            resolv = f"search {' '.join(self.resolv_search)}\n{resolv}options ndots:5\n"
        (etc / "resolv.conf").write_text(resolv)
        shutil.copyfile(self.pki.origin_ca_cert, etc / "ca-certificates.crt")
        for path in etc.iterdir():
            path.chmod(0o644)
        for pod in ("proxy", "antivirus"):
            state = self.state_dir(pod)
            state.mkdir(parents=True, exist_ok=True)
            os.chown(state, UID, GID)
            state.chmod(0o750)

    def _argv(self, spec: DaemonSpec) -> list[str]:
        """nsenter + unshare + mounts + chroot: ``spec.argv`` as a container of ``spec.pod``
        (a ``spec.host`` daemon: nsenter alone)."""
        assert self.netns is not None
        if spec.host:
            return self.netns.argv(list(spec.argv))
        root = self.rootfs
        etc = self.workdir / "etc"
        binds = [
            ("-o", "bind,ro", spec.conf or self.conf, CONF),
            ("-o", "bind", self.state_dir(spec.pod), STATE),
            ("-o", "bind,ro", self.workdir / "tls", TLS),
            ("-o", "bind,ro", self.ldap_secret, LDAP_SECRET),
            ("-o", "bind,ro", self.ldap_ca, LDAP_CA),
            ("-o", "bind,ro", self.workdir / "access-tls", ACCESS_TLS),
            ("-o", "bind,ro", self.workdir / "bin", "/usr/local/bin"),
            ("-o", "bind,ro", etc / "hosts", "/etc/hosts"),
            ("-o", "bind,ro", etc / "resolv.conf", "/etc/resolv.conf"),
            ("-o", "bind,ro", etc / "ca-certificates.crt", "/etc/ssl/certs/ca-certificates.crt"),
        ]
        q = shlex.quote
        lines = ["set -eu"]
        lines += [
            f"mount {o} {flags} {q(str(src))} {q(str(root) + dst)}" for o, flags, src, dst in binds
        ]
        lines += [
            f"mount -t proc proc {q(str(root / 'proc'))}",
            f"mount -t tmpfs -o mode=1777,size=256m tmpfs {q(str(root / 'dev/shm'))}",
            f"mount -t tmpfs -o mode=1777,size=256m tmpfs {q(str(root / 'tmp'))}",
        ]
        env = {
            "PATH": "/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": STATE,
            "LANG": "C.UTF-8",
            "TZ": "UTC",
            "SWG_CONF_DIR": CONF,
            "SWG_STATE_DIR": STATE,
            "SWG_CLAMD_WAIT_SECONDS": "30",
        }
        chroot = [
            "chroot", f"--userspec={UID}:{GID}", f"--groups={GID}", str(root),
            "/usr/bin/env", "-i", *(f"{k}={v}" for k, v in env.items()), *spec.argv,
        ]  # fmt: skip
        lines.append("cd / && exec " + " ".join(q(a) for a in chroot))
        assert self.netns is not None
        return self.netns.argv(["unshare", "--mount", "--", "sh", "-c", "\n".join(lines)])

    def run_in_pod(
        self, pod: str, argv: Sequence[str], *, timeout: float = 60.0
    ) -> subprocess.CompletedProcess[str]:
        """Run a command as a container of ``pod`` would (probes, ``squid -k parse``)."""
        return subprocess.run(
            self._argv(DaemonSpec(f"{pod}-exec", pod, tuple(argv))),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def start_extra_daemon(
        self, spec: DaemonSpec, ready: Callable[[], bool], *, timeout: float = 60.0
    ) -> Daemon:
        """Start a daemon of another pod (its own state directory, its own configuration
        directory ``spec.conf``) in this stack's namespace; ``ready`` runs in the namespace."""
        state = self.state_dir(spec.pod)
        state.mkdir(parents=True, exist_ok=True)
        os.chown(state, UID, GID)
        state.chmod(0o750)
        self.extra[spec.name] = (spec, ready)
        return self.start_daemon(spec.name, timeout=timeout)

    def start_daemon(self, name: str, *, timeout: float = 60.0) -> Daemon:
        spec = self.extra[name][0] if name in self.extra else DAEMONS[name]
        daemon = spawn(spec, self._argv(spec), self.workdir / "logs", owner=UID)
        self.daemons[name] = daemon
        self._wait_ready(daemon, timeout=timeout)
        return daemon

    def _ready(self, name: str) -> bool:
        assert self.netns is not None
        if name in self.extra:
            return self.netns.call(self.extra[name][1])
        if name == "clamd":
            return self.clamd_socket is not None and unix_ping(self.clamd_socket)
        address = self.icap_address if name == "c-icap" else self.proxy_address
        assert address is not None
        return self.netns.call(lambda: tcp_open(address))

    def _wait_ready(self, daemon: Daemon, *, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not daemon.alive:
                raise DaemonStartError(
                    f"{daemon.spec.name} exited with {daemon.process.returncode} while starting:\n"
                    f"{daemon.log_tail()}"
                )
            if self._ready(daemon.spec.name):
                return
            time.sleep(0.05)
        raise DaemonStartError(
            f"{daemon.spec.name} not ready after {timeout}s:\n{daemon.log_tail()}"
        )

    def stop_daemon(
        self, name: str, *, timeout: float = 60.0, sig: signal.Signals = signal.SIGTERM
    ) -> float:
        """Stop one daemon (SIGTERM by default, as the kubelet does); seconds it took."""
        daemon = self.daemons.pop(name)
        return daemon.stop(timeout=timeout, sig=sig)

    def close(self) -> None:
        for name in ("squid", "c-icap", "clamd", *reversed(self.extra)):
            if name in self.daemons:
                # SIGINT: Squid stops at once instead of waiting for shutdown_lifetime.
                with contextlib.suppress(Exception):
                    self.stop_daemon(name, timeout=2, sig=signal.SIGINT)
        if self.origin is not None:
            self.origin.close()
            self.origin = None
        if self.netns is not None:
            self.netns.delete()
            self.netns = None

    # ------------------------------------------------------------------ traffic
    def request(self, url: str, **options: Unpack[client.CurlOptions]) -> client.Response:
        """curl through this stack's Squid, inside the namespace (see client.curl)."""
        assert self.netns is not None
        return client.curl(self.netns, url, proxy=self.proxy, **options)

    def direct(self, url: str, **options: Unpack[client.CurlOptions]) -> client.Response:
        """curl straight to the origin, inside the namespace (baselines)."""
        assert self.netns is not None
        return client.curl(self.netns, url, proxy=None, **options)

    # ------------------------------------------------------------------ logs
    def stdout_lines(self, daemon: str) -> list[str]:
        """What a daemon printed on stdout so far."""
        path = self.workdir / "logs" / f"{daemon}.out"
        return path.read_text(errors="replace").splitlines() if path.exists() else []

    def access_log(self) -> list[dict[str, object]]:
        """The JSON lines Squid appended to the tenant access log (``formats``: the file on the
        proxy pod's state directory that the shipper reads), as Squid wrote them."""
        return self.json_log(SQUID_ACCESS_LOG_PATH, pod="proxy")

    def wait_for_access_log(self, pattern: str, *, timeout: float = 10.0) -> dict[str, object]:
        """The first access log entry whose JSON text matches ``pattern`` (regex)."""
        line = self.wait_for_log("proxy", SQUID_ACCESS_LOG_PATH, pattern, timeout=timeout)
        entry: dict[str, object] = json.loads(line, strict=False)
        return entry

    def read_log(self, pod: str, chroot_path: str) -> str:
        path = self.host_path(pod, chroot_path)
        return path.read_text(errors="replace") if path.exists() else ""

    def json_log(self, chroot_path: str, *, pod: str = "proxy") -> list[dict[str, object]]:
        return [
            json.loads(line, strict=False)
            for line in self.read_log(pod, chroot_path).splitlines()
            if line
        ]

    def wait_for_log(
        self, pod: str, chroot_path: str, pattern: str, *, timeout: float = 10.0
    ) -> str:
        """The first line matching ``pattern`` (regex), polling until ``timeout``."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            for line in self.read_log(pod, chroot_path).splitlines():
                if regex.search(line):
                    return line
            if time.monotonic() > deadline:
                raise AssertionError(f"no line matching {pattern!r} in {chroot_path} ({pod})")
            time.sleep(0.05)
