"""The leader election's `LeaseStore` on the API server: one coordination.k8s.io/v1 Lease.

Three requests, and the RBAC each needs (the chart's Role in the operator's namespace grants
exactly these; tests/test_chart_rbac_secrets.py derives them from `VERBS`):

* `get()`: GET of the Lease by name (`get`, limited by resourceNames to the one Lease);
* `create()`: POST to the namespace's leases (`create`: a POST names no object when it is
  authorised, so it cannot be limited by name);
* `update()`: PUT with the resourceVersion last read (`update`, by resourceNames); 409 when
  another process wrote it meanwhile.

Its own HTTP session with a short timeout, apart from the reconciles' connection pool: a
renewal never waits behind a burst of reconciles for a connection.
"""

from __future__ import annotations

import datetime
import json
from dataclasses import replace
from typing import Any, Final

import aiohttp
import kopf

from swg_operator.election import LeaseConflictError, LeaseRecord
from swg_operator.kube.api import KubeApiError
from swg_operator.kube.http import login

API_VERSION: Final = "coordination.k8s.io/v1"
# Method -> (RBAC verb, limited to the Lease's name).
VERBS: Final = {"get": ("get", True), "create": ("create", False), "update": ("update", True)}
_MICRO = "%Y-%m-%dT%H:%M:%S.%fZ"


def _time(value: str | None) -> datetime.datetime | None:
    if not value:
        return None
    for pattern in (_MICRO, "%Y-%m-%dT%H:%M:%SZ"):
        try:
            return datetime.datetime.strptime(value, pattern).replace(tzinfo=datetime.UTC)
        except ValueError:
            continue
    return None


def _micro(value: datetime.datetime | None) -> str | None:
    return None if value is None else value.astimezone(datetime.UTC).strftime(_MICRO)


def to_record(lease: dict[str, Any]) -> LeaseRecord:
    spec = lease.get("spec") or {}
    return LeaseRecord(
        holder=str(spec.get("holderIdentity") or ""),
        duration=float(spec.get("leaseDurationSeconds") or 0),
        acquired=_time(spec.get("acquireTime")),
        renewed=_time(spec.get("renewTime")),
        transitions=int(spec.get("leaseTransitions") or 0),
        version=str(lease.get("metadata", {}).get("resourceVersion") or ""),
    )


def to_lease(record: LeaseRecord, *, name: str, namespace: str) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "labels": {"app.kubernetes.io/managed-by": "swg-operator"},
    }
    if record.version:
        metadata["resourceVersion"] = record.version
    spec: dict[str, Any] = {
        "holderIdentity": record.holder or None,
        "leaseDurationSeconds": max(1, round(record.duration)),
        "acquireTime": _micro(record.acquired),
        "renewTime": _micro(record.renewed),
        "leaseTransitions": record.transitions,
    }
    return {
        "apiVersion": API_VERSION,
        "kind": "Lease",
        "metadata": metadata,
        "spec": {k: v for k, v in spec.items() if v is not None},
    }


class HttpLeaseStore:
    """Lease `namespace/name` over HTTP; create it inside the running event loop."""

    def __init__(self, name: str, namespace: str, *, request_timeout: float = 2.0) -> None:
        self.name = name
        self.namespace = namespace
        self._info: kopf.ConnectionInfo = login()
        self._timeout = aiohttp.ClientTimeout(total=request_timeout)
        self._session: aiohttp.ClientSession | None = None

    @property
    def _collection(self) -> str:
        return f"/apis/{API_VERSION}/namespaces/{self.namespace}/leases"

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                base_url=self._info.server.rstrip("/"),
                headers=self._info.as_http_headers(),
                connector=aiohttp.TCPConnector(ssl=self._info.as_ssl_context(), limit=2),
                timeout=self._timeout,
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _request(self, method: str, path: str, body: Any = None) -> dict[str, Any] | None:
        for attempt in (1, 2):
            session = self._open()
            data = None if body is None else json.dumps(body)
            headers = {"Content-Type": "application/json"} if body is not None else {}
            try:
                async with session.request(method, path, data=data, headers=headers) as response:
                    text = await response.text()
                    if response.status == 401 and attempt == 1:
                        self._info = login()  # projected ServiceAccount tokens rotate
                        await session.close()
                        continue
                    if response.status == 404 and method == "GET":
                        return None
                    if response.status == 409:
                        raise LeaseConflictError(f"{method} {path}: {text[:200]}")
                    if response.status >= 400:
                        raise KubeApiError(response.status, f"{method} {path}: {text[:500]}")
                    parsed = json.loads(text)
                    assert isinstance(parsed, dict)
                    return parsed
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise KubeApiError(0, f"{method} {path}: {exc!r}", reason="NoAnswer") from exc
        raise KubeApiError(401, f"{method} {path}: unauthorized", reason="Unauthorized")

    async def get(self) -> LeaseRecord | None:
        found = await self._request("GET", f"{self._collection}/{self.name}")
        return None if found is None else to_record(found)

    async def create(self, record: LeaseRecord) -> LeaseRecord:
        body = to_lease(replace(record, version=""), name=self.name, namespace=self.namespace)
        created = await self._request("POST", self._collection, body)
        assert created is not None
        return to_record(created)

    async def update(self, record: LeaseRecord) -> LeaseRecord:
        body = to_lease(record, name=self.name, namespace=self.namespace)
        updated = await self._request("PUT", f"{self._collection}/{self.name}", body)
        assert updated is not None
        return to_record(updated)
