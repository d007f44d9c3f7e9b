"""The real `KubeApi`: REST over aiohttp with the credentials kopf resolves.

Why aiohttp directly (figures in docs/operator.md): kopf already loads aiohttp and resolves the
credentials (in-cluster ServiceAccount or kubeconfig) into a public `kopf.ConnectionInfo`, so this
adapter costs no extra dependency and no extra memory; server-side apply is one PATCH with the
apply content type; objects stay plain dicts end to end; and the Date header of every response is
at hand for the purge deadline's server-clock check.
"""

from __future__ import annotations

import datetime
import email.utils
import logging
import os
import socket
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, Final

import aiohttp
import kopf

from swg_operator import metrics
from swg_operator.kube import wire
from swg_operator.kube.api import FIELD_MANAGER, EventType, KubeApiError
from swg_operator.kube.cache import slim
from swg_operator.kube.kinds import EVENT, ResourceKind, kind_of

logger = logging.getLogger(__name__)

APPLY_CONTENT_TYPE = "application/apply-patch+yaml"  # JSON is YAML: the body is JSON
MERGE_CONTENT_TYPE = "application/merge-patch+json"
LIST_PAGE = 500
WATCH_SECONDS = 300  # the server ends a watch after this long; it is opened again at once


def login() -> kopf.ConnectionInfo:
    """Credentials the same way kopf's own login resolves them: the pod's ServiceAccount when
    running in a cluster, otherwise $KUBECONFIG (or ~/.kube/config), whose user may be an
    `exec` credential plugin (kube/exec_credentials.py; kopf alone ignores those)."""
    from swg_operator.kube.exec_credentials import login_with_exec_plugin

    settings = kopf.OperatorSettings()
    info = kopf.login_with_service_account(settings=settings)
    if info is None:
        from_kubeconfig = kopf.login_with_kubeconfig(settings=settings)
        info = login_with_exec_plugin(from_kubeconfig) or from_kubeconfig
    if info is None:
        raise kopf.LoginError("Found no ServiceAccount token and no kubeconfig to log in with")
    return info


POOL_SIZE = 16  # connections to the API server; the reconciles in flight stay below it
# How long the Date header of the last answer stands for the API server's clock (plus the time
# elapsed since, on the monotonic clock) before `server_time` asks again.
DATE_REUSE_SECONDS: Final = 10.0


def retry_after(value: str | None) -> float | None:
    """The seconds of a `Retry-After` header (delta-seconds; an HTTP date is not sent by the
    API server and counts as none)."""
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


class HttpKubeApi:
    """`KubeApi` over one aiohttp session; create it inside the running event loop.

    Timeouts are per socket operation (connecting, then each read), so a request that waits for
    one of the pool's `POOL_SIZE` connections is never failed for the wait. Credentials travel
    per request: after a 401 they are read again (`relogin`; projected ServiceAccount tokens
    rotate) and the request is sent once more, while the session, and every request in flight
    on it, carries on."""

    def __init__(
        self,
        info: kopf.ConnectionInfo,
        *,
        request_timeout: float = 30.0,
        event_namespace: str = "default",
        relogin: Callable[[], kopf.ConnectionInfo] = login,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._info = info
        self._monotonic = monotonic
        self._last_date: tuple[str, float] | None = None  # (Date header, monotonic when heard)
        self._relogin = relogin
        self._timeout = aiohttp.ClientTimeout(
            total=None, connect=None, sock_connect=10.0, sock_read=request_timeout
        )
        self._session: aiohttp.ClientSession | None = None
        self._watch_session: aiohttp.ClientSession | None = None
        self._event_namespace = event_namespace
        self._instance = os.environ.get("HOSTNAME") or socket.gethostname()

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = self._new_session(POOL_SIZE)
        return self._session

    def _open_watches(self) -> aiohttp.ClientSession:
        """Watches hold their connection for minutes: they have their own pool, unbounded,
        so they never take one of the requests' `POOL_SIZE`."""
        if self._watch_session is None or self._watch_session.closed:
            self._watch_session = self._new_session(0)
        return self._watch_session

    def _new_session(self, limit: int) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(ssl=self._info.as_ssl_context(), limit=limit)
        return aiohttp.ClientSession(
            base_url=self._info.server.rstrip("/"), connector=connector, timeout=self._timeout
        )

    def _refresh(self, refused: kopf.ConnectionInfo) -> None:
        """Credentials read again after a 401 to a request sent with `refused`, once: by the
        first request in flight to hear it."""
        if self._info is refused:
            self._info = self._relogin()

    async def close(self) -> None:
        for session in (self._session, self._watch_session):
            if session is not None:
                await session.close()

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        allow_404: bool = False,
    ) -> tuple[Any, str | None]:
        """Send one request; return (parsed JSON or None, Date header). Retries once after a
        401 with freshly read credentials."""
        verb = method.lower()
        data = None if body is None else wire.encode(body)
        for attempt in (1, 2):
            session = self._open()
            info = self._info
            headers = dict(info.as_http_headers())
            if body is not None:
                headers["Content-Type"] = content_type
            try:
                async with session.request(
                    method, path, params=params, data=data, headers=headers
                ) as response:
                    metrics.API_REQUESTS.labels(verb=verb, code=str(response.status)).inc()
                    raw = await response.read()
                    date = response.headers.get("Date")
                    if date:
                        self._last_date = (date, self._monotonic())
                    if response.status == 401 and attempt == 1:
                        self._refresh(info)
                        continue
                    if response.status == 404 and allow_404:
                        return None, date
                    if response.status >= 400:
                        error = _error(response.status, raw)
                        error.retry_after = retry_after(response.headers.get("Retry-After"))
                        raise error
                    return (wire.decode(raw) if raw else None), date
            except (aiohttp.ClientError, TimeoutError) as exc:
                metrics.API_REQUESTS.labels(verb=verb, code="0").inc()
                raise KubeApiError(0, f"{method} {path}: {exc!r}", reason="NoAnswer") from exc
        raise KubeApiError(401, f"{method} {path}: unauthorized", reason="Unauthorized")

    async def apply(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        kind = kind_of(obj)
        meta = obj.get("metadata", {})
        path = kind.object_path(meta["name"], meta.get("namespace"))
        params = {"fieldManager": FIELD_MANAGER, "force": "true"}
        result, _ = await self._request(
            "PATCH", path, params=params, body=obj, content_type=APPLY_CONTENT_TYPE
        )
        assert isinstance(result, dict)
        # Kept while many others are made (the reconcile's status, the watch cache until the
        # watch reports the write): as the cache keeps objects, without `managedFields`.
        return slim(result, api_version=kind.api_version, kind=kind.kind)

    async def list_labelled(
        self, kind: ResourceKind, *, selector: str, namespace: str | None = None
    ) -> list[dict[str, Any]]:
        items, _ = await self._list(kind, selector=selector, namespace=namespace)
        # Lists omit apiVersion/kind on the items: put them back so items are manifests.
        return [{"apiVersion": kind.api_version, "kind": kind.kind, **item} for item in items]

    async def list_versioned(
        self, kind: ResourceKind, *, selector: str
    ) -> tuple[list[dict[str, Any]], str]:
        """Every object of `kind` with `selector`, all namespaces, and the list's
        resourceVersion (where a watch of what changed since starts)."""
        return await self._list(kind, selector=selector, namespace=None)

    async def _list(
        self, kind: ResourceKind, *, selector: str, namespace: str | None
    ) -> tuple[list[dict[str, Any]], str]:
        """The items of every page, as the API server gives them, and the resourceVersion."""
        items: list[dict[str, Any]] = []
        params = {"labelSelector": selector, "limit": str(LIST_PAGE)}
        while True:
            page, _ = await self._request("GET", kind.collection_path(namespace), params=params)
            items += page.get("items", [])
            meta = page.get("metadata", {})
            if not meta.get("continue"):
                return items, str(meta.get("resourceVersion", ""))
            params = {**params, "continue": meta["continue"]}

    async def watch(
        self, kind: ResourceKind, *, selector: str, resource_version: str
    ) -> AsyncIterator[dict[str, Any]]:
        """The events of `kind` with `selector` (all namespaces) after `resource_version`, with
        bookmarks, until the server ends the watch (after `WATCH_SECONDS`) or the connection
        drops. Errors: `KubeApiError` (status 0 for no answer, 410 for a version too old)."""
        params = {
            "watch": "1",
            "labelSelector": selector,
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(WATCH_SECONDS),
        }
        path = kind.collection_path(None)
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10.0, sock_read=WATCH_SECONDS + 30)
        for attempt in (1, 2):
            info = self._info
            try:
                async with self._open_watches().get(
                    path, params=params, headers=dict(info.as_http_headers()), timeout=timeout
                ) as response:
                    metrics.API_REQUESTS.labels(verb="watch", code=str(response.status)).inc()
                    if response.status == 401 and attempt == 1:
                        self._refresh(info)
                        continue
                    if response.status >= 400:
                        raise _error(response.status, await response.read())
                    rest = b""
                    async for chunk in response.content.iter_any():
                        lines, rest = split_lines(rest, chunk)
                        for line in lines:
                            yield wire.decode(line)
                    return
            except (aiohttp.ClientError, TimeoutError) as exc:
                metrics.API_REQUESTS.labels(verb="watch", code="0").inc()
                raise KubeApiError(0, f"WATCH {path}: {exc!r}", reason="NoAnswer") from exc
        raise KubeApiError(401, f"WATCH {path}: unauthorized", reason="Unauthorized")

    async def find_named(
        self, kind: ResourceKind, name: str, *, namespace: str
    ) -> dict[str, Any] | None:
        params = {"fieldSelector": f"metadata.name={name}"}
        page, _ = await self._request("GET", kind.collection_path(namespace), params=params)
        for item in page.get("items", []):
            return {"apiVersion": kind.api_version, "kind": kind.kind, **item}
        return None

    async def get(
        self, kind: ResourceKind, name: str, *, namespace: str | None = None
    ) -> dict[str, Any] | None:
        result, _ = await self._request("GET", kind.object_path(name, namespace), allow_404=True)
        return result if isinstance(result, dict) else None

    async def create(self, obj: Mapping[str, Any], *, dry_run: bool = False) -> bool:
        kind = kind_of(obj)
        params = {"fieldManager": FIELD_MANAGER, **({"dryRun": "All"} if dry_run else {})}
        path = kind.collection_path(obj.get("metadata", {}).get("namespace"))
        try:
            # The answer (the object as sent, for a Secret its key) is not kept.
            await self._request("POST", path, params=params, body=obj)
        except KubeApiError as exc:
            if exc.status == 409 and exc.reason == "AlreadyExists":
                return False
            raise
        return True

    async def patch(
        self,
        kind: ResourceKind,
        name: str,
        patch: Mapping[str, Any],
        *,
        namespace: str | None = None,
    ) -> dict[str, Any] | None:
        result, _ = await self._request(
            "PATCH",
            kind.object_path(name, namespace),
            body=dict(patch),
            content_type=MERGE_CONTENT_TYPE,
            allow_404=True,
        )
        stored: dict[str, Any] | None = result
        return stored

    async def delete(self, kind: ResourceKind, name: str, *, namespace: str | None = None) -> bool:
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}
        result, _ = await self._request(
            "DELETE", kind.object_path(name, namespace), body=body, allow_404=True
        )
        return result is not None

    async def patch_status(
        self, kind: ResourceKind, name: str, status: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        path = f"{kind.object_path(name)}/status"
        result, _ = await self._request(
            "PATCH", path, body={"status": dict(status)}, content_type=MERGE_CONTENT_TYPE
        )
        return result if isinstance(result, dict) else None

    async def post_event(
        self,
        *,
        regarding: Mapping[str, Any],
        reason: str,
        message: str,
        type_: EventType = "Normal",
    ) -> None:
        meta = regarding.get("metadata", {})
        namespace = meta.get("namespace") or self._event_namespace
        now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{meta.get('name', 'unknown')}.", "namespace": namespace},
            "involvedObject": {
                "apiVersion": regarding.get("apiVersion"),
                "kind": regarding.get("kind"),
                "name": meta.get("name"),
                "uid": meta.get("uid"),
                **({"namespace": meta["namespace"]} if meta.get("namespace") else {}),
            },
            "reason": reason,
            "message": message[:1024],
            "type": type_,
            "source": {"component": FIELD_MANAGER},
            "reportingComponent": FIELD_MANAGER,
            "reportingInstance": self._instance,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        await self._request("POST", EVENT.collection_path(namespace), body=event)

    async def server_time(self) -> datetime.datetime:
        """The API server's clock: the Date header of an answer heard in the last
        `DATE_REUSE_SECONDS` plus the time elapsed since (monotonic, so a change of this
        machine's wall clock does not move it), else that of a GET of /version. Either is
        behind by less than the header's one-second resolution, never ahead."""
        if self._last_date is not None:
            heard_date, heard_at = self._last_date
            elapsed = self._monotonic() - heard_at
            if 0 <= elapsed <= DATE_REUSE_SECONDS:
                return _parse_date(heard_date) + datetime.timedelta(seconds=elapsed)
        _, date = await self._request("GET", "/version")
        if not date:
            raise KubeApiError(0, "the API server sent no Date header", reason="NoDate")
        return _parse_date(date)


def split_lines(buffer: bytes, chunk: bytes) -> tuple[list[bytes], bytes]:
    """The complete lines of `buffer + chunk` (a watch answers one JSON object per line) and
    what is left of the next line."""
    lines = (buffer + chunk).split(b"\n")
    return [line for line in lines[:-1] if line.strip()], lines[-1]


def _parse_date(date: str) -> datetime.datetime:
    try:
        return email.utils.parsedate_to_datetime(date).astimezone(datetime.UTC)
    except (TypeError, ValueError) as exc:
        raise KubeApiError(0, f"unreadable Date header {date[:64]!r}", reason="NoDate") from exc


def _error(status: int, raw: bytes) -> KubeApiError:
    text = raw.decode(errors="replace")
    try:
        body = wire.decode(raw)
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    return KubeApiError(
        status, str(body.get("message") or text[:500]), reason=body.get("reason", "")
    )
