"""The test client: curl, run inside the stack's namespace, through the proxy.

curl is what a user would point at the gateway; running it through ``nsenter`` keeps every
packet on the namespace's loopback. Bodies go to files, so large downloads are checked by digest.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import ssl
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict, Unpack

from e2e.dataplane.netns import NetNamespace

_CERT_RE = re.compile(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", re.S)
_MARK = "\n@@swg-certs@@\n"


@dataclass(frozen=True)
class Response:
    status: int  # 0 when curl got no HTTP response (see exit_code / error)
    headers: dict[str, str]  # lower-case names, last value wins
    body: bytes
    exit_code: int
    error: str
    certs: list[str]  # PEM certificates the client saw (HTTPS), leaf first
    info: dict[str, object]

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.body).hexdigest()

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


def _parse_headers(raw: str) -> dict[str, str]:
    # With a proxy CONNECT, curl writes the proxy's "200 Connection established" block first:
    # keep the last response block only.
    blocks = [b for b in re.split(r"\r?\n\r?\n", raw.strip()) if b.strip()]
    headers: dict[str, str] = {}
    for line in blocks[-1].splitlines()[1:] if blocks else []:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return headers


class CurlOptions(TypedDict, total=False):
    method: str
    upload: Path  # sent as the request body (POST unless ``method`` says otherwise)
    cacert: Path  # the only CA the client trusts for HTTPS
    insecure: bool  # accept any certificate (to look at it)
    source: str  # the client's address, e.g. 127.0.0.9 (client CIDR rules)
    headers: dict[str, str]
    timeout: float
    proxy_user: str  # user:password for the proxy (Basic; CONNECT too)
    proxy_cacert: Path  # the only CA the client trusts for the proxy's own TLS listener
    resolve: list[str]  # curl --resolve entries (host:port:address), e.g. for the proxy's name


def curl(
    netns: NetNamespace, url: str, *, proxy: str | None, **options: Unpack[CurlOptions]
) -> Response:
    """One request. ``proxy`` is ``host:port`` or a URL such as ``https://host:port`` (the TLS
    listener); None: straight to the origin, for baselines."""
    method = options.get("method")
    upload = options.get("upload")
    cacert = options.get("cacert")
    source = options.get("source")
    timeout = options.get("timeout", 30.0)
    with tempfile.TemporaryDirectory(prefix="swg-curl-") as tmp:
        body_file, header_file = Path(tmp) / "body", Path(tmp) / "headers"
        argv = [
            "curl", "--silent", "--show-error", "--max-time", str(timeout),
            "--output", str(body_file), "--dump-header", str(header_file),
            "--write-out", "%{json}" + _MARK.replace("\n", "\\n") + "%{certs}",
            "--noproxy", "" if proxy else "*",
        ]  # fmt: skip
        if proxy:
            argv += ["--proxy", proxy if "://" in proxy else f"http://{proxy}"]
        if (proxy_cacert := options.get("proxy_cacert")) is not None:
            argv += ["--proxy-cacert", str(proxy_cacert)]
        for entry in options.get("resolve", []):
            argv += ["--resolve", entry]
        if method:
            argv += ["--request", method]
        if upload is not None:
            argv += ["--data-binary", f"@{upload}", "-H", "Content-Type: application/octet-stream"]
        if cacert is not None:
            argv += ["--cacert", str(cacert)]
        if options.get("insecure"):
            argv += ["--insecure"]
        if source:
            argv += ["--interface", source]
        if "proxy_user" in options:
            argv += ["--proxy-user", options["proxy_user"], "--proxy-basic"]
        for name, value in options.get("headers", {}).items():
            argv += ["-H", f"{name}: {value}"]
        argv.append(url)
        proc = subprocess.run(
            netns.argv(argv),
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout + 15,
            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C.UTF-8"},
        )
        info_text, _, certs_text = proc.stdout.partition(_MARK)
        info: dict[str, object] = json.loads(info_text) if info_text.strip() else {}
        body = body_file.read_bytes() if body_file.exists() else b""
        raw_headers = header_file.read_text(errors="replace") if header_file.exists() else ""
    status = info.get("http_code", 0)
    return Response(
        status=status if isinstance(status, int) else 0,
        headers=_parse_headers(raw_headers),
        body=body,
        exit_code=proc.returncode,
        error=proc.stderr.strip(),
        certs=_CERT_RE.findall(certs_text),
        info=info,
    )


@dataclass(frozen=True)
class TunnelResponse:
    """What a client got from a CONNECT tunnel it drove itself (``tunnel``)."""

    connect_status: int  # the proxy's answer to CONNECT; 0 when none came
    handshake: bool  # the TLS handshake inside the tunnel completed
    status: int  # the HTTP status inside the tunnel; 0 when none came
    body: bytes
    error: str


def _status_of(head: bytes) -> int:
    match = re.match(rb"HTTP/1\.[01] (\d{3})", head)
    return int(match.group(1)) if match else 0


def _read_until_close(sock: socket.socket | ssl.SSLSocket, limit: int = 1 << 20) -> bytes:
    data = b""
    while len(data) < limit:
        try:
            chunk = sock.recv(65536)
        except (OSError, ssl.SSLError):
            break
        if not chunk:
            break
        data += chunk
    return data


def tunnel(
    netns: NetNamespace,
    proxy: tuple[str, int],
    *,
    connect: str,
    sni: str | None,
    host: str,
    path: str = "/",
    source: str | None = None,
    timeout: float = 15.0,
) -> TunnelResponse:
    """CONNECT ``connect`` (host:port, sent exactly as given) through ``proxy``, then TLS with
    ``sni`` as the server name (None: no SNI) and ``GET path`` with ``Host: host``: what a
    client that lies in its CONNECT line or its SNI does. The server's certificate is not
    checked (the point is what the proxy lets through)."""

    def run() -> TunnelResponse:
        sock = socket.create_connection(
            proxy, timeout=timeout, source_address=(source, 0) if source else None
        )
        try:
            sock.sendall(f"CONNECT {connect} HTTP/1.1\r\nHost: {connect}\r\n\r\n".encode())
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                head += chunk
            connect_status = _status_of(head)
            if connect_status != 200:
                return TunnelResponse(connect_status, False, 0, head, "CONNECT refused")
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            try:
                tls = context.wrap_socket(sock, server_hostname=sni)
            except (OSError, ssl.SSLError) as exc:
                return TunnelResponse(connect_status, False, 0, b"", f"handshake: {exc}")
            request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
            try:
                tls.sendall(request.encode())
            except (OSError, ssl.SSLError) as exc:
                return TunnelResponse(connect_status, True, 0, b"", f"request: {exc}")
            answer = _read_until_close(tls)
            head, _, body = answer.partition(b"\r\n\r\n")
            return TunnelResponse(connect_status, True, _status_of(head), body, "")
        finally:
            sock.close()

    return netns.call(run, timeout=timeout + 15)


def raw_request(
    netns: NetNamespace, proxy: tuple[str, int], request: bytes, *, timeout: float = 15.0
) -> tuple[int, bytes]:
    """Send ``request`` (bytes, exactly as given) to the proxy; (status, whole answer)."""

    def run() -> tuple[int, bytes]:
        with socket.create_connection(proxy, timeout=timeout) as sock:
            sock.sendall(request)
            answer = _read_until_close(sock)
        return _status_of(answer), answer

    return netns.call(run, timeout=timeout + 15)
