"""A stand-in for a customer's external sandbox analyser: a second, real c-icap + clamd, with a
signature set of its own, serving ICAP over TLS (c-icap's TlsPort) in a stack's namespace.

Its configuration is the anti-virus pod's as `swg-operator render` writes it, with the listener
changed: TLS on ``ANALYSER_PORT`` with a certificate the stack's test CA signed (the only CA in
the proxy's bundle, as a public CA would be), plus a plain port on 127.0.0.1 for the image's own
readiness probe. It runs as a pod of its own (state directory ``analyser``).
"""

from __future__ import annotations

import re
import shutil
import socket
from collections.abc import Iterable
from pathlib import Path

from e2e.dataplane.daemons import DaemonSpec, unix_ping
from e2e.dataplane.stack import ENTRYPOINTS, DataplaneStack

ANALYSER_HOST = "analyser.sandbox.test"
ANALYSER_ADDRESS = "127.0.0.1"
ANALYSER_PORT = 11344
PROBE_PORT = 11345
ANALYSER_URL = f"icaps://{ANALYSER_HOST}:{ANALYSER_PORT}/avscan"
POD = "analyser"
_ENTRYPOINT = "/usr/local/bin/" + next(n for n in ENTRYPOINTS if "antivirus" in n)


def analyser_conf(rendered: Path, stack: DataplaneStack, signatures: Iterable[Path]) -> Path:
    """The analyser's configuration directory, from a rendered anti-virus configuration."""
    return write_analyser_conf(
        rendered,
        stack.workdir / "analyser-conf",
        cert=stack.pki.origin_cert,
        key=stack.pki.origin_key,
        signatures=signatures,
    )


def write_analyser_conf(
    rendered: Path, conf: Path, *, cert: Path, key: Path, signatures: Iterable[Path]
) -> Path:
    """`conf`, an analyser's configuration directory: the rendered anti-virus configuration
    with the TLS listener (`cert`, `key`) and `signatures` beside it."""
    conf.mkdir(exist_ok=True)
    for name in ("virus_scan.conf", "clamd_mod.conf", "clamd.conf"):
        shutil.copyfile(rendered / name, conf / name)
    shutil.copyfile(cert, conf / "tls.crt")
    shutil.copyfile(key, conf / "tls.key")
    text = (rendered / "c-icap.conf").read_text()
    listener = (
        f"Port 127.0.0.1:{PROBE_PORT}\n"
        f"TlsPort {ANALYSER_PORT} cert=/etc/swg/conf/tls.crt key=/etc/swg/conf/tls.key\n"
    )
    text = re.sub(r"^Port .*\n", listener, text, count=1, flags=re.MULTILINE)
    (conf / "c-icap.conf").write_text(text)
    for path in signatures:
        shutil.copyfile(path, conf / f"analyser-{path.name}")
    for path in conf.iterdir():
        path.chmod(0o644)
    conf.chmod(0o755)
    return conf


def _tcp_open(port: int) -> bool:
    try:
        with socket.create_connection((ANALYSER_ADDRESS, port), timeout=1):
            return True
    except OSError:
        return False


def start_analyser(stack: DataplaneStack, conf: Path) -> None:
    """clamd, then c-icap, of the analyser pod in the stack's namespace."""
    socket_path = stack.host_path(POD, "/var/lib/swg/clamd/clamd.sock")
    stack.start_extra_daemon(
        DaemonSpec("analyser-clamd", POD, (_ENTRYPOINT, "clamd"), conf),
        lambda: unix_ping(socket_path),
    )
    stack.start_extra_daemon(
        DaemonSpec("analyser-c-icap", POD, (_ENTRYPOINT, "c-icap"), conf),
        lambda: _tcp_open(ANALYSER_PORT),
    )


def stop_analyser(stack: DataplaneStack) -> None:
    for name in ("analyser-c-icap", "analyser-clamd"):
        if name in stack.daemons:
            stack.stop_daemon(name, timeout=10)
