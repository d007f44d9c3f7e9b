"""Requests to a stack's TLS listener (spec.access.tls) the way a client that was given its name
and its CA makes them (`through_tls`: proxied; `from_listener`: the listener's own objects, such
as the PAC file), and a request paired with the access log entry Squid wrote for it (`logged`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from e2e.dataplane import client
from e2e.dataplane.pki import ACCESS_HOSTNAME
from e2e.dataplane.stack import DataplaneStack


def _listener(stack: DataplaneStack) -> tuple[str, list[str]]:
    """The listener's URL by its name, and the curl --resolve entry that names its address."""
    assert stack.netns is not None
    assert stack.tls_address is not None
    host, port = stack.tls_address
    return f"https://{ACCESS_HOSTNAME}:{port}", [f"{ACCESS_HOSTNAME}:{port}:{host}"]


def through_tls(
    stack: DataplaneStack,
    url: str,
    *,
    trust: Path | None = None,
    proxy_user: str | None = None,
    cacert: Path | None = None,
) -> client.Response:
    """curl to ``url`` through the TLS listener by its name, trusting ``trust`` for the
    listener's certificate (by default the listener's CA), with ``proxy_user``'s Basic
    credentials (none: no credentials) and ``cacert`` for an https:// origin."""
    proxy, resolve = _listener(stack)
    options: client.CurlOptions = {
        "proxy_cacert": trust or stack.pki.access_ca_cert,
        "resolve": resolve,
    }
    if proxy_user is not None:
        options["proxy_user"] = proxy_user
    if cacert is not None:
        options["cacert"] = cacert
    assert stack.netns is not None
    return client.curl(stack.netns, url, proxy=proxy, **options)


def from_listener(stack: DataplaneStack, path: str) -> client.Response:
    """GET ``path`` of the TLS listener itself (not proxied), trusting the listener's CA."""
    base, resolve = _listener(stack)
    assert stack.netns is not None
    return client.curl(
        stack.netns, base + path, proxy=None, cacert=stack.pki.access_ca_cert, resolve=resolve
    )


def logged(
    stack: DataplaneStack, send: Callable[[], client.Response], url: str
) -> tuple[client.Response, dict[str, object]]:
    """``send()``, one request for ``url``, and its access log entry (requests are one at a
    time, and Squid appends the entry when the transaction ends)."""
    before = len(stack.access_log())
    response = send()
    deadline = time.monotonic() + 10
    while len(entries := stack.access_log()) <= before:
        assert time.monotonic() < deadline, f"no access log entry for {url}"
        time.sleep(0.05)
    return response, entries[-1]
