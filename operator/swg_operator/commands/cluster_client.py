"""The HTTP side shared by the `kubectl swg` commands (logs, status, and the ones to come): a
client that talks to the API server as the caller (their kubeconfig: certificate, token, exec
plugin), and the reading of the API server's own error answers.

It never uses the operator's identity: what the caller may see is decided by the API server's
authorization of the caller (the Roles the operator grants a tenant's declared admins).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, Final

import httpx2 as httpx

TIMEOUT_SECONDS: Final = 30.0


class ClusterClientError(RuntimeError):
    """No usable client or answer; the message says why in the user's terms."""


def api_status(body: str) -> Mapping[str, Any] | None:
    """The API server's own error (a `Status` object), or None when the body is someone
    else's: the log store's, or whatever stood between the API server and the pod."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    if isinstance(parsed, dict) and parsed.get("kind") == "Status":
        return parsed
    return None


def is_authorization_refusal(status: int, body: str) -> bool:
    """A 403 from the API server's authorization: a `Status` with reason `Forbidden`. A 403
    whose body is not one is an answer passed through the service proxy (an HTTP proxy or
    firewall on the API server's path to the pod refusing the dial), not an RBAC decision."""
    if status != 403:
        return False
    parsed = api_status(body)
    return parsed is not None and parsed.get("reason") == "Forbidden"


def http_client(
    *, kubeconfig: str | None, context: str | None, server: str | None = None
) -> httpx.Client:
    """An HTTP client for the API server as the kubeconfig's user (lightkube reads the
    kubeconfig: certificates, tokens, exec plugins), or for a log store URL."""
    timeout = httpx.Timeout(TIMEOUT_SECONDS, read=None)
    if server:
        return httpx.Client(base_url=server, timeout=timeout)
    from lightkube.config import client_adapter
    from lightkube.config.kubeconfig import KubeConfig
    from lightkube.core.exceptions import ConfigError

    try:
        config = KubeConfig.from_file(kubeconfig) if kubeconfig else KubeConfig.from_env()
        single = config.get(context_name=context)
    except ConfigError as err:
        where = "--kubeconfig" if kubeconfig else "$KUBECONFIG or ~/.kube/config"
        raise ClusterClientError(f"no usable kubeconfig: {err}; check {where}") from err
    if single is None:
        raise ClusterClientError(f"context {context!r} is not in the kubeconfig")
    client: httpx.Client = client_adapter.Client(
        single, client_adapter.ConnectionParams(timeout=timeout)
    )
    return client


def read_config_map_data(
    path: str,
    *,
    kubeconfig: str | None,
    context: str | None,
    explain: Callable[[int, str], str],
) -> dict[str, str]:
    """The `data` of the ConfigMap at API `path`, read with the caller's identity; a refusal
    or an unanswered request is a `ClusterClientError` worded by `explain(status, body)`."""
    client = http_client(kubeconfig=kubeconfig, context=context)
    try:
        with client:
            response = client.get(path)
    except httpx.HTTPError as err:
        raise ClusterClientError(f"the cluster did not answer: {err}") from err
    if response.status_code != 200:
        raise ClusterClientError(explain(response.status_code, response.text))
    data = response.json().get("data") or {}
    return {str(k): str(v) for k, v in data.items()}
