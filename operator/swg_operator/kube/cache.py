"""What the watches last said of the operator's objects, read by the reconcile instead of LISTs.

The running operator feeds it from kopf's in-memory indexes (`handlers`): every owned kind by
tenant label, and the ConfigMaps of the operator namespace (the URL catalogue, the platform's
signatures). kopf fills every index from its first listing before any handler runs, so a
reconcile never sees a half-listed cache. The indexes hold every owned object of every tenant,
so each is kept `Packed`: compressed compact JSON, a tenth of the memory the same object takes as
Python dicts; a read unpacks a fresh copy, which the reader may change.

A watch event arrives some time after the write that caused it. Until then, the answer of the
operator's own write is laid over what the watch says (`wrote`, `deleted`), so a reconcile that
follows at once does not see its own objects as they were and write them again. Every watch
event of an object (`saw`) ends what was laid over it; so does time (`PATIENCE`), should an
event never come.
"""

from __future__ import annotations

import copy
import time
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from swg_operator.kube import wire
from swg_operator.labels import TENANT_KEY, label_of

T = TypeVar("T")

Key = tuple[str, str, str | None, str]  # apiVersion, kind, namespace, name
PATIENCE = 120.0  # seconds a write is laid over the watch at most


def cache_key(obj: Mapping[str, Any]) -> Key:
    meta = obj.get("metadata") or {}
    return (
        str(obj.get("apiVersion", "")),
        str(obj.get("kind", "")),
        meta.get("namespace") or None,
        str(meta.get("name", "")),
    )


def slim(obj: Mapping[str, Any], *, api_version: str, kind: str) -> dict[str, Any]:
    """An object as the cache keeps it: a manifest (lists and watches omit nothing, but the
    items of a list lack apiVersion and kind) without `managedFields`, which the reconcile never
    reads and which is most of an object's size. Shares its values with `obj`."""
    meta = obj.get("metadata") or {}
    kept = {k: v for k, v in obj.items() if k != "metadata"}
    kept["metadata"] = {k: v for k, v in meta.items() if k != "managedFields"}
    return {"apiVersion": api_version, "kind": kind, **kept}


@dataclass(frozen=True, slots=True)
class Packed:
    """One watched object, slimmed, as compressed compact JSON; its kind said outside, so a
    reader looking for one kind unpacks no other."""

    blob: bytes
    kind: str

    def unpack(self) -> dict[str, Any]:
        """A fresh copy of the object."""
        unpacked: dict[str, Any] = wire.decode(zlib.decompress(self.blob))
        return unpacked


def pack(obj: Mapping[str, Any], *, api_version: str, kind: str) -> Packed:
    """`obj` as the cache keeps it (`slim`, then packed)."""
    text = wire.encode(slim(obj, api_version=api_version, kind=kind))
    return Packed(zlib.compress(text, 1), kind)


def _version(obj: Mapping[str, Any] | None) -> int | None:
    raw = ((obj or {}).get("metadata") or {}).get("resourceVersion")
    try:
        return int(str(raw))
    except ValueError:
        return None


def newer(mine: Mapping[str, Any], watched: Mapping[str, Any] | None) -> bool:
    """True while the watch has not caught up with `mine` (the answer of a write): the watched
    copy is missing or has an older resourceVersion. resourceVersions are etcd revisions; one
    that is not a number counts as caught up (the watch wins)."""
    if watched is None:
        return True
    have, want = _version(watched), _version(mine)
    return have is not None and want is not None and have < want


@dataclass
class WatchCache:
    """`children(label)`: the watched objects labelled as one tenant's (`swg.dev/tenant` value);
    `config_maps()`: the watched ConfigMaps of the operator namespace."""

    children_of: Callable[[str], Iterable[Packed]]
    config_maps_of: Callable[[], Iterable[Packed]]
    clock: Callable[[], float] = time.monotonic
    # Per tenant label: the operator's writes the watch has not reported yet (None: deleted,
    # with the resourceVersion it had when it was deleted), and when they were made.
    _written: dict[str, dict[Key, tuple[dict[str, Any] | None, int | None, float]]] = field(
        default_factory=dict
    )
    # Per name given to `derived`: the ConfigMaps it was computed from, and what it gave.
    _derived: dict[str, tuple[frozenset[Packed], object]] = field(default_factory=dict)

    def children(self, label: str, *, kind: str | None = None) -> list[dict[str, Any]]:
        """The objects labelled `label` (of `kind` only, when given), as the watch said them
        or as the operator's own writes left them."""
        unpacked = (
            packed.unpack()
            for packed in self.children_of(label)
            if kind is None or packed.kind == kind
        )
        watched = {cache_key(obj): obj for obj in unpacked}
        pending = self._written.get(label, {})
        expired = self.clock() - PATIENCE
        for key, (mine, gone_version, when) in list(pending.items()):
            if kind is not None and key[1] != kind:
                continue
            seen = watched.get(key)
            if when < expired:
                del pending[key]
            elif mine is None:  # deleted by the operator
                if seen is None or _version(seen) == gone_version:
                    watched.pop(key, None)
                else:
                    del pending[key]  # made again since: the watch is right
            elif newer(mine, seen):
                watched[key] = mine
            else:
                del pending[key]
        if not pending:
            self._written.pop(label, None)
        return [copy.deepcopy(obj) if key in pending else obj for key, obj in watched.items()]

    def saw(self, obj: Mapping[str, Any], *, deleted: bool = False) -> None:
        """A watch event of `obj`: whatever the operator wrote of it is reported now, or
        superseded."""
        pending = self._written.get(label_of(obj, TENANT_KEY))
        if not pending:
            return
        key = cache_key(obj)
        entry = pending.get(key)
        if entry is None:
            return
        mine, gone_version, _ = entry
        version = _version(obj)
        if mine is None:
            done = deleted or version is None or gone_version is None or version > gone_version
        else:
            done = deleted or not newer(mine, obj)
        if done:
            del pending[key]

    def config_maps(self) -> list[dict[str, Any]]:
        return [packed.unpack() for packed in self.config_maps_of()]

    def derived(self, name: str, derive: Callable[[list[dict[str, Any]]], T]) -> T:
        """What `derive` makes of the ConfigMaps, made again only once one of them changed
        (a reconcile reads the platform's catalogue and signatures, which rarely change and can
        be large). Nothing is kept when `derive` raises. What it gives is shared: never change
        it."""
        packed = frozenset(self.config_maps_of())
        known = self._derived.get(name)
        if known is not None and known[0] == packed:
            return cast(T, known[1])
        value = derive([item.unpack() for item in packed])
        self._derived[name] = (packed, value)
        return value

    def wrote(self, stored: Mapping[str, Any]) -> None:
        """The API server's answer to a write of one of a tenant's objects."""
        if label := label_of(stored, TENANT_KEY):
            entry = (dict(stored), None, self.clock())
            self._written.setdefault(label, {})[cache_key(stored)] = entry

    def deleted(self, obj: Mapping[str, Any]) -> None:
        """One of a tenant's objects (as last observed) was deleted by the operator."""
        if label := label_of(obj, TENANT_KEY):
            entry = (None, _version(obj), self.clock())
            self._written.setdefault(label, {})[cache_key(obj)] = entry
