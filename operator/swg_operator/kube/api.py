"""`KubeApi`: the one door to the API server, as a Protocol the reconcile loop depends on.

The real adapter (`swg_operator.kube.http.HttpKubeApi`) speaks REST over aiohttp; unit tests pass
an in-memory fake (`tests/fakes.py`). Objects travel as plain JSON dicts, exactly as the API
server sends and receives them.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, Literal, Protocol

from swg_operator.kube.kinds import ResourceKind

FIELD_MANAGER = "swg-operator"
EventType = Literal["Normal", "Warning"]

# HTTP statuses worth a retry with backoff: conflicts, a watch or list position the server no
# longer holds (410 Gone), throttling and server-side trouble.
TRANSIENT_STATUSES = frozenset({409, 410, 429, 500, 502, 503, 504})
# The namespace lifecycle admission's refusal of new objects in a namespace being deleted.
NAMESPACE_TERMINATING = "because it is being terminated"


class KubeApiError(Exception):
    """The API server refused a request (`status` is its HTTP status, 0 for no answer)."""

    def __init__(
        self, status: int, message: str, *, reason: str = "", retry_after: float | None = None
    ) -> None:
        super().__init__(f"{status} {reason}: {message}".strip())
        self.status = status
        self.reason = reason
        self.api_message = message
        self.retry_after = retry_after  # seconds, from the answer's Retry-After header

    @property
    def transient(self) -> bool:
        """True for errors that go away by themselves: retry these with backoff. A write into
        a namespace being deleted is one (403 from the namespace lifecycle admission): once the
        namespace is gone, the watch tells so and the next reconcile acts on it."""
        if self.status == 403 and NAMESPACE_TERMINATING in self.api_message:
            return True
        return self.status == 0 or self.status in TRANSIENT_STATUSES


class KubeApi(Protocol):
    """What the operator needs from the API server, and nothing more."""

    async def apply(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Server-side apply as field manager `swg-operator`, forcing conflicts; returns the
        object as stored, without `metadata.managedFields`."""
        ...

    async def list_labelled(
        self, kind: ResourceKind, *, selector: str, namespace: str | None = None
    ) -> list[dict[str, Any]]:
        """Objects of `kind` matching the label `selector` (`a=b,c`); in `namespace`, or across
        all namespaces (or the cluster-scoped ones) when it is None."""
        ...

    async def find_named(
        self, kind: ResourceKind, name: str, *, namespace: str
    ) -> dict[str, Any] | None:
        """The object `name` in `namespace`, or None: a list with the field selector
        `metadata.name=<name>`, so it needs `list` (which the operator holds for its own
        objects anyway) and not `get`."""
        ...

    async def get(
        self, kind: ResourceKind, name: str, *, namespace: str | None = None
    ) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""
        ...

    async def create(self, obj: Mapping[str, Any], *, dry_run: bool = False) -> bool:
        """Create `obj` (a POST) unless its name is taken: True when it was created (with
        `dry_run`, when it would have been; nothing is stored then), False when an object of
        that name exists (409 AlreadyExists). Never changes an existing object and never
        returns one: for Secrets this needs `create` only, which discloses no Secret."""
        ...

    async def patch(
        self,
        kind: ResourceKind,
        name: str,
        patch: Mapping[str, Any],
        *,
        namespace: str | None = None,
    ) -> dict[str, Any] | None:
        """JSON merge patch of an existing object (never creates one: needs `patch` only);
        returns it as stored, or None when it does not exist."""
        ...

    async def delete(self, kind: ResourceKind, name: str, *, namespace: str | None = None) -> bool:
        """Delete (dependents in the background); False when it was already gone."""
        ...

    async def patch_status(
        self, kind: ResourceKind, name: str, status: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        """Merge-patch the status subresource of a cluster-scoped object; returns the object as
        stored (its resourceVersion tells the watch event of this write)."""
        ...

    async def post_event(
        self,
        *,
        regarding: Mapping[str, Any],
        reason: str,
        message: str,
        type_: EventType = "Normal",
    ) -> None:
        """Record a Kubernetes Event about the object `regarding` (its body)."""
        ...

    async def server_time(self) -> datetime.datetime:
        """The API server's clock now (from a fresh response's Date header), UTC, truncated to
        the second, so never ahead of the server's real time."""
        ...
