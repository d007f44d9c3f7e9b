"""The benchmark's origin: Debian 12's nginx, serving fixed-size files on 127.0.0.2:8080 inside
a stack's loopback-only namespace.

The harness's own origin (e2e/dataplane/origin.py) is a Python server, right for correctness
tests but far slower than Squid, so it would be what the benchmark measures. nginx is not in the
trixie rootfs (its package lists are the images'); the host's nginx is used when installed,
otherwise the `nginx` package of the host's Debian release is fetched with `apt-get download`
and unpacked (not installed: no service is started) under
~/.cache/swg-operator/bench/nginx/<version>/.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from e2e.dataplane.netns import NetNamespace

ADDRESS = "127.0.0.2"
PORT = 8080  # not 80/443: the harness's origin holds those in every stack namespace
OBJECTS = {"1k.bin": 1024, "1m.bin": 1024 * 1024}

NGINX_CONF = """\
daemon off;
master_process on;
user nobody nogroup;
worker_processes {workers};
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    client_body_temp_path {dir}/tmp/body;
    proxy_temp_path {dir}/tmp/proxy;
    fastcgi_temp_path {dir}/tmp/fastcgi;
    uwsgi_temp_path {dir}/tmp/uwsgi;
    scgi_temp_path {dir}/tmp/scgi;
    server {{
        listen {address}:{port} reuseport backlog=4096;
        root {dir}/www;
        location / {{ }}
    }}
}}
"""


def cache_dir() -> Path:
    return Path.home() / ".cache" / "swg-operator" / "bench" / "nginx"


def _candidate_version() -> str:
    out = subprocess.run(
        ["apt-cache", "policy", "nginx"], capture_output=True, text=True, check=True
    ).stdout
    for line in out.splitlines():
        if line.strip().startswith("Candidate:"):
            return line.split(":", 1)[1].strip()
    raise RuntimeError("apt-cache knows no nginx candidate: run `apt-get update`")


def nginx_binary() -> Path:
    """The host's nginx, or Debian's nginx package unpacked into the cache."""
    for path in (shutil.which("nginx"), "/usr/sbin/nginx"):
        if path and os.access(path, os.X_OK):
            return Path(path)
    cached = sorted(cache_dir().glob("*/usr/sbin/nginx"))
    if cached:
        return cached[-1]
    version = _candidate_version()
    target = cache_dir() / version.replace(":", "_")
    with tempfile.TemporaryDirectory(prefix="swg-bench-nginx-") as tmp:
        subprocess.run(
            ["apt-get", "download", "-q", "-o", "APT::Sandbox::User=root", f"nginx={version}"],
            cwd=tmp,
            check=True,
        )
        deb = next(Path(tmp).glob("nginx_*.deb"))
        staging = target.with_name(target.name + ".tmp")
        staging.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(staging, ignore_errors=True)
        subprocess.run(["dpkg-deb", "-x", str(deb), str(staging)], check=True)
        staging.rename(target)
    return target / "usr" / "sbin" / "nginx"


def nginx_version(binary: Path) -> str:
    proc = subprocess.run([str(binary), "-v"], capture_output=True, text=True, check=False)
    return (proc.stderr or proc.stdout).strip()


def write_objects(www: Path) -> dict[str, int]:
    www.mkdir(parents=True, exist_ok=True)
    rng = random.Random(1)  # noqa: S311 - reproducible payload bytes, not a secret
    for name, size in OBJECTS.items():
        (www / name).write_bytes(rng.randbytes(size))
        (www / name).chmod(0o644)
    return dict(OBJECTS)


def _tcp_open(address: tuple[str, int]) -> bool:
    try:
        with socket.create_connection(address, timeout=1):
            return True
    except OSError:
        return False


class NginxOrigin:
    """One nginx (one worker by default) in `netns`; stop with :meth:`close`."""

    def __init__(self, netns: NetNamespace, workdir: Path, *, workers: int = 1) -> None:
        self.netns = netns
        self.dir = workdir
        self.binary = nginx_binary()
        for sub in ("www", "tmp"):
            (workdir / sub).mkdir(parents=True, exist_ok=True)
        workdir.chmod(0o755)
        write_objects(workdir / "www")
        conf = workdir / "nginx.conf"
        conf.write_text(NGINX_CONF.format(workers=workers, dir=workdir, address=ADDRESS, port=PORT))
        argv = [
            str(self.binary),
            "-p",
            str(workdir),
            "-c",
            str(conf),
            "-e",
            str(workdir / "error.log"),
        ]
        self.log = workdir / "nginx.out"
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                netns.argv(argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 30
        while not netns.call(lambda: _tcp_open((ADDRESS, PORT))):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError(f"nginx did not start: {self.log.read_text()[-2000:]}")
            time.sleep(0.05)

    @property
    def pid(self) -> int:
        return self.process.pid

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
