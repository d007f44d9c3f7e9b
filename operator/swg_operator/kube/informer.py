"""One kind's objects with a label, kept in memory from a LIST and then a WATCH: the operator's
view of the objects it owns, read by the reconcile instead of asking the API server.

Why not kopf's watches: kopf watches a kind cluster-wide, filters labels on its side, and runs
every event through its handler machinery (causes, progress state, loggers, two handler calls:
an index and an event handler). For the owned kinds, which make most of the operator's events,
that was about a third of its CPU per tenant provisioned (docs/benchmarks.md). An informer asks
the API server for the labelled objects only and does three things per event: keeps the object
packed (`cache.pack`), and tells `on_event`.

The protocol is the API server's own (client-go's reflector):

* LIST by label selector in pages, then WATCH from the list's resourceVersion with bookmarks;
  every event (bookmarks too) moves the resourceVersion on, so a watch that ends (the server's
  `timeoutSeconds`, a dropped connection) is opened again where it stopped, missing nothing.
* A resourceVersion the server no longer has (410 Gone, as an answer or as an ERROR event) means
  events were missed: LIST again, and tell `on_event` of every object that changed or went
  meanwhile (a deletion as a `DELETED` event), so no drift goes unnoticed.
* Any other failure (no answer, 5xx, 429) waits a jittered, growing delay and tries again; the
  informer never stops before it is cancelled.

`synced` is set once the first LIST is in: until then the store is incomplete, and the operator
runs no reconcile.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from swg_operator import metrics
from swg_operator.kube.api import KubeApiError
from swg_operator.kube.cache import Key, Packed, cache_key, pack
from swg_operator.kube.kinds import ResourceKind
from swg_operator.labels import label_of

logger = logging.getLogger(__name__)

GONE = 410
RETRY_FIRST = 0.5  # seconds before the first retry of a failed LIST or WATCH
RETRY_CAP = 30.0
BUG_OFFSET = 3  # a bug waits as long as a failed watch three attempts later


class WatchSource(Protocol):
    async def list_versioned(
        self, kind: ResourceKind, *, selector: str
    ) -> tuple[list[dict[str, Any]], str]: ...

    def watch(
        self, kind: ResourceKind, *, selector: str, resource_version: str
    ) -> AsyncIterator[dict[str, Any]]: ...


# (event type, object): ADDED, MODIFIED, DELETED; None for an object found by the first LIST.
EventHandler = Callable[[str | None, dict[str, Any]], None]


def retry_delay(attempt: int, *, jitter: Callable[[], float] = random.random) -> float:
    """0.5, 1, 2 ... seconds (capped at 30), each scaled by a factor between 0.5 and 1."""
    return min(RETRY_CAP, RETRY_FIRST * 2.0 ** (attempt - 1)) * (0.5 + jitter() / 2)


def _version(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


class _Expired(Exception):  # noqa: N818 - a signal: LIST again
    pass


@dataclass
class Informer:
    """The objects of `kind` matching `selector`, packed, by the value of their label
    `index_label` (`by_label`)."""

    source: WatchSource
    kind: ResourceKind
    selector: str
    index_label: str
    on_event: EventHandler
    synced: asyncio.Event = field(default_factory=asyncio.Event)
    jitter: Callable[[], float] = random.random
    # Per object: (its index label's value, the object packed, its resourceVersion).
    _objects: dict[Key, tuple[str, Packed, str]] = field(default_factory=dict)
    _by_label: dict[str, set[Key]] = field(default_factory=dict)
    _version: str = ""

    def by_label(self, value: str) -> list[Packed]:
        return [self._objects[key][1] for key in self._by_label.get(value, ())]

    def __len__(self) -> int:
        return len(self._objects)

    async def run(self) -> None:
        """LIST, then WATCH, for ever (until cancelled)."""
        attempt = 0
        while True:
            try:
                if not self._version:
                    await self._relist()
                attempt = 0
                await self._watch()
            except _Expired:
                self._version = ""
            except KubeApiError as exc:
                if exc.status == GONE:
                    self._version = ""
                    continue
                attempt += 1
                delay = retry_delay(attempt, jitter=self.jitter)
                logger.warning(
                    "Failed to watch %s (retrying in %.1fs): %s", self.kind.plural, delay, exc
                )
                await asyncio.sleep(delay)
            except Exception:  # a bug: list everything again rather than stop watching
                attempt += 1
                delay = retry_delay(attempt + BUG_OFFSET, jitter=self.jitter)
                logger.exception(
                    "Failed to follow %s (listing again in %.1fs)", self.kind.plural, delay
                )
                self._version = ""
                await asyncio.sleep(delay)

    async def _relist(self) -> None:
        items, version = await self.source.list_versioned(self.kind, selector=self.selector)
        items = [self._manifest(obj) for obj in items]
        before, first = self._objects, not self.synced.is_set()
        self._objects, self._by_label = {}, {}
        for obj in items:
            self._keep("ADDED", obj)
        self._version = version
        self.synced.set()
        for obj in items:
            known = before.pop(cache_key(obj), None)
            if first:
                self.on_event(None, obj)
            elif known is None or known[2] != _version(obj):
                self.on_event("MODIFIED", obj)
        for _, packed, _ in before.values():  # gone meanwhile: told as they were last kept
            self.on_event("DELETED", packed.unpack())

    async def _watch(self) -> None:
        stream = self.source.watch(
            self.kind, selector=self.selector, resource_version=self._version
        )
        async for event in stream:
            kind = str(event.get("type"))
            obj = event.get("object") or {}
            if kind == "ERROR":
                if obj.get("code") == GONE:
                    raise _Expired
                raise KubeApiError(int(obj.get("code") or 0), str(obj.get("message", "")))
            self._version = _version(obj) or self._version
            if kind == "BOOKMARK":
                continue
            metrics.WATCH_EVENTS.labels(kind=self.kind.kind, type=kind).inc()
            obj = self._manifest(obj)
            self._keep(kind, obj)
            self.on_event(kind, obj)

    def _manifest(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        # Lists and watches omit (or may omit) apiVersion and kind on the objects.
        return {**obj, "apiVersion": self.kind.api_version, "kind": self.kind.kind}

    def _keep(self, kind: str, obj: Mapping[str, Any]) -> None:
        key = cache_key(obj)
        known = self._objects.pop(key, None)
        if known is not None:
            keys = self._by_label.get(known[0], set())
            keys.discard(key)
            if not keys:
                self._by_label.pop(known[0], None)
        if kind == "DELETED":
            return
        label = label_of(obj, self.index_label)
        packed = pack(obj, api_version=self.kind.api_version, kind=self.kind.kind)
        self._objects[key] = (label, packed, _version(obj))
        self._by_label.setdefault(label, set()).add(key)
