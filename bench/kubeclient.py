"""A minimal asynchronous Kubernetes client for the benchmarks: REST over aiohttp, nothing else.

It is what the provisioning benchmark's floor applies the rendered objects with (no operator
logic, no caches: one server-side apply per object) and what the harness watches tenants and
Deployments with. It reads a kubeconfig with a client certificate or a bearer token (the admin
kubeconfig of the local control plane, or a ServiceAccount's from `service_account_kubeconfig`)
and talks to 127.0.0.1 only: the server address comes from that kubeconfig.
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import tempfile
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import yaml

APPLY_CONTENT_TYPE = "application/apply-patch+yaml"


class ApiError(RuntimeError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


def _ssl_context(cluster: Mapping[str, Any], user: Mapping[str, Any]) -> ssl.SSLContext:
    context = ssl.create_default_context(
        cadata=base64.b64decode(cluster["certificate-authority-data"]).decode()
    )
    if "client-certificate-data" in user:
        # The ssl module loads a certificate chain from files only: a private temporary folder.
        with tempfile.TemporaryDirectory() as tmp:
            cert, key = Path(tmp, "client.crt"), Path(tmp, "client.key")
            for path, field in ((cert, "client-certificate-data"), (key, "client-key-data")):
                path.touch(mode=0o600)
                path.write_bytes(base64.b64decode(user[field]))
            context.load_cert_chain(str(cert), str(key))
    return context


class KubeClient:
    """One aiohttp session to the API server of `kubeconfig`, at most `limit` connections."""

    def __init__(self, kubeconfig: Path, *, limit: int = 16, timeout: float = 120.0) -> None:
        config = yaml.safe_load(kubeconfig.read_text())
        context_name = config.get("current-context")
        context = next(
            (c["context"] for c in config["contexts"] if c["name"] == context_name),
            config["contexts"][0]["context"],
        )
        cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == context["cluster"])
        user = next(u["user"] for u in config["users"] if u["name"] == context["user"])
        self.server = str(cluster["server"]).rstrip("/")
        self._ssl = _ssl_context(cluster, user)
        self._headers = {"User-Agent": "swg-bench/1"}
        if "token" in user:
            self._headers["Authorization"] = f"Bearer {user['token']}"
        self._limit = limit
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> KubeClient:
        self._session = aiohttp.ClientSession(
            base_url=self.server,
            headers=self._headers,
            connector=aiohttp.TCPConnector(ssl=self._ssl, limit=self._limit),
            timeout=self._timeout,
        )
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._session is not None:
            await self._session.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("use `async with KubeClient(...)`")
        return self._session

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        ok: tuple[int, ...] = (),
    ) -> Any:
        """Send one request and return the parsed JSON answer; `ApiError` on a status >= 400
        that is not in `ok` (for those, None is returned)."""
        data = None if body is None else json.dumps(body, separators=(",", ":"))
        headers = {"Content-Type": content_type} if body is not None else {}
        async with self.session.request(
            method, path, params=params, data=data, headers=headers
        ) as response:
            text = await response.text()
            if response.status in ok:
                return None
            if response.status >= 400:
                raise ApiError(response.status, text[:300])
            return json.loads(text) if text else None

    async def apply(self, obj: Mapping[str, Any], *, field_manager: str) -> Any:
        """Server-side apply of one object (the path comes from its apiVersion and kind)."""
        meta = obj["metadata"]
        path = object_path(
            obj["apiVersion"], plural_of(obj["kind"]), meta["name"], meta.get("namespace")
        )
        return await self.request(
            "PATCH",
            path,
            params={"fieldManager": field_manager, "force": "true"},
            body=obj,
            content_type=APPLY_CONTENT_TYPE,
        )

    async def watch(
        self, collection: str, *, params: Mapping[str, str] | None = None
    ) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """Every (event type, object) of `collection`, starting with the current objects as
        ADDED, re-listing after an expired resourceVersion or a closed stream; runs until the
        caller stops iterating."""
        base = dict(params or {})
        while True:
            listed = await self.request("GET", collection, params=base)
            for item in listed.get("items", []):
                yield "ADDED", item
            version = listed["metadata"]["resourceVersion"]
            while True:
                query = {
                    **base,
                    "watch": "1",
                    "resourceVersion": version,
                    "allowWatchBookmarks": "true",
                    "timeoutSeconds": "300",
                }
                expired = False
                try:
                    async with self.session.get(
                        collection,
                        params=query,
                        timeout=aiohttp.ClientTimeout(total=None, sock_read=330),
                    ) as response:
                        if response.status == 410:
                            expired = True
                        elif response.status >= 400:
                            raise ApiError(response.status, (await response.text())[:300])
                        else:
                            async for line in response.content:
                                if not line.strip():
                                    continue
                                event = json.loads(line)
                                kind, obj = event["type"], event["object"]
                                if kind == "ERROR":
                                    expired = True
                                    break
                                version = obj["metadata"].get("resourceVersion", version)
                                if kind != "BOOKMARK":
                                    yield kind, obj
                except (aiohttp.ClientError, TimeoutError):
                    await asyncio.sleep(1.0)
                if expired:
                    break  # re-list


_PLURALS = {
    "Namespace": "namespaces",
    "ServiceAccount": "serviceaccounts",
    "ConfigMap": "configmaps",
    "Secret": "secrets",
    "Service": "services",
    "PersistentVolumeClaim": "persistentvolumeclaims",
    "ResourceQuota": "resourcequotas",
    "LimitRange": "limitranges",
    "Deployment": "deployments",
    "StatefulSet": "statefulsets",
    "NetworkPolicy": "networkpolicies",
    "PodDisruptionBudget": "poddisruptionbudgets",
    "Role": "roles",
    "RoleBinding": "rolebindings",
    "ClusterRoleBinding": "clusterrolebindings",
    "SecureWebGateway": "securewebgateways",
}


def plural_of(kind: str) -> str:
    return _PLURALS[kind]


def collection_path(api_version: str, plural: str, namespace: str | None = None) -> str:
    base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    return f"{base}/namespaces/{namespace}/{plural}" if namespace else f"{base}/{plural}"


def object_path(api_version: str, plural: str, name: str, namespace: str | None = None) -> str:
    return f"{collection_path(api_version, plural, namespace)}/{name}"
