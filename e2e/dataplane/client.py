"""The test client: curl, run inside the stack's namespace, through the proxy.

curl is what a user would point at the gateway; running it through ``nsenter`` keeps every
packet on the namespace's loopback. Bodies go to files, so large downloads are checked by digest.
"""

from __future__ import annotations

import hashlib
import json
import re
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


def curl(
    netns: NetNamespace, url: str, *, proxy: str | None, **options: Unpack[CurlOptions]
) -> Response:
    """One request. ``proxy`` is ``host:port`` (None: straight to the origin, for baselines)."""
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
            argv += ["--proxy", f"http://{proxy}"]
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
