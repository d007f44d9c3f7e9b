"""The test origin: HTTP on port 80 and HTTPS on port 443 of every 127.0.0.0/8 address of a
loopback-only namespace, serving the payload files and accepting uploads; and a DNS responder on
127.0.0.1:53 that answers NXDOMAIN to every query, so that a name missing from the hosts file
fails at once (as with a real resolver) instead of after Squid's 30 s DNS timeout; it records
the names asked (``Origin.dns_queries()``).

Routes (the same for every Host name):
  GET  /files/<name>   a payload file
  GET  /headers        the request headers as JSON (what the proxy forwarded)
  GET  /header-list    the same as a JSON list of [name, value], repeated names kept
  GET  /<anything>     a small text body naming the host and path
  POST|PUT /upload     reads the body, answers JSON {"size", "sha256"}; uploads are recorded
"""

from __future__ import annotations

import hashlib
import json
import socket
import ssl
import struct
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from e2e.dataplane.netns import NetNamespace
from e2e.dataplane.payloads import Payload


@dataclass(frozen=True)
class Upload:
    host: str
    path: str
    size: int
    sha256: str


@dataclass
class OriginState:
    payloads: dict[str, Payload]
    uploads: list[Upload] = field(default_factory=list)
    requests: list[tuple[str, str, str]] = field(default_factory=list)  # (method, host, path)
    dns_queries: list[str] = field(default_factory=list)  # names asked of the DNS responder
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    state: OriginState


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    server_version = "swg-test-origin"

    def log_message(self, format: str, *args: object) -> None:
        return

    def _record(self) -> None:
        with self.server.state.lock:
            self.server.state.requests.append(
                (self.command, self.headers.get("Host", ""), self.path)
            )

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self) -> None:
        self._record()
        path = self.path.split("?", 1)[0]
        if path.startswith("/files/"):
            payload = self.server.state.payloads.get(path.removeprefix("/files/"))
            if payload is None:
                self._send(404, b"no such file\n", "text/plain")
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(payload.size))
            self.end_headers()
            with payload.path.open("rb") as src:
                while chunk := src.read(256 * 1024):
                    self.wfile.write(chunk)
            return
        if path == "/headers":
            body = json.dumps(dict(self.headers.items()), sort_keys=True).encode()
            self._send(200, body, "application/json")
            return
        if path == "/header-list":
            body = json.dumps(list(self.headers.items())).encode()
            self._send(200, body, "application/json")
            return
        host = self.headers.get("Host", "")
        self._send(200, f"origin {host} {path}\n".encode(), "text/plain")

    def do_HEAD(self) -> None:
        self.do_GET()

    def _upload(self) -> None:
        self._record()
        length = int(self.headers.get("Content-Length", "0"))
        digest = hashlib.sha256()
        remaining = length
        while remaining > 0:
            chunk = self.rfile.read(min(remaining, 256 * 1024))
            if not chunk:
                break
            digest.update(chunk)
            remaining -= len(chunk)
        upload = Upload(
            self.headers.get("Host", ""), self.path, length - remaining, digest.hexdigest()
        )
        with self.server.state.lock:
            self.server.state.uploads.append(upload)
        body = json.dumps({"size": upload.size, "sha256": upload.sha256}).encode()
        self._send(200, body, "application/json")

    def do_POST(self) -> None:
        self._upload()

    def do_PUT(self) -> None:
        self._upload()


def _nxdomain(query: bytes) -> bytes | None:
    """The NXDOMAIN answer to a DNS query (header flags: response, RD copied, RA, RCODE 3)."""
    if len(query) < 12:
        return None
    ident, flags, qdcount = struct.unpack("!HHH", query[:6])
    if flags & 0x8000:  # a response, not a query
        return None
    header = struct.pack("!HHHHHH", ident, 0x8183 | (flags & 0x0100), qdcount, 0, 0, 0)
    return header + query[12:]


def _query_name(query: bytes) -> str:
    """The QNAME of a DNS query, dotted ("" when it cannot be read)."""
    labels: list[str] = []
    offset = 12
    while offset < len(query):
        length = query[offset]
        if length == 0 or length > 63:
            break
        labels.append(query[offset + 1 : offset + 1 + length].decode("ascii", "replace"))
        offset += 1 + length
    return ".".join(labels)


def _serve_nxdomain(sock: socket.socket, state: OriginState) -> None:
    while True:
        try:
            query, peer = sock.recvfrom(4096)
        except OSError:
            return
        answer = _nxdomain(query)
        if answer is not None:
            with state.lock:
                state.dns_queries.append(_query_name(query))
            sock.sendto(answer, peer)


class Origin:
    """Both listeners, running on daemon threads of the test process inside ``netns``."""

    def __init__(
        self, netns: NetNamespace, payloads: dict[str, Payload], *, cert: Path, key: Path
    ) -> None:
        self.state = OriginState(payloads)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)

        def bind() -> tuple[_Server, _Server, socket.socket]:
            http = _Server(("0.0.0.0", 80), _Handler)
            https = _Server(("0.0.0.0", 443), _Handler)
            # The handshake happens on the handler thread, not in the accept loop.
            https.socket = context.wrap_socket(
                https.socket, server_side=True, do_handshake_on_connect=False
            )
            dns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            dns.bind(("127.0.0.1", 53))
            return http, https, dns

        # The listening sockets are created in the namespace; accepted connections stay there.
        http, https, self._dns = netns.call(bind)
        self._servers = (http, https)
        for server in self._servers:
            server.state = self.state
            threading.Thread(target=server.serve_forever, daemon=True).start()
        threading.Thread(target=_serve_nxdomain, args=(self._dns, self.state), daemon=True).start()

    def uploads(self) -> list[Upload]:
        with self.state.lock:
            return list(self.state.uploads)

    def requests(self) -> list[tuple[str, str, str]]:
        with self.state.lock:
            return list(self.state.requests)

    def dns_queries(self) -> list[str]:
        with self.state.lock:
            return list(self.state.dns_queries)

    def close(self) -> None:
        self._dns.close()
        for server in self._servers:
            server.shutdown()
            server.server_close()
