"""The in-memory API server of the unit tests (import it as `fakes.FakeKube`): enough of the API
server's behaviour to test the reconcile loop (server-side apply by field manager, create-only POST
with dry run, merge patch, label and name selectors, a Secret's stringData stored as base64 data,
namespace cascade, creation timestamps, status subresource, Events, a settable clock, and the
PersistentVolume controller's reclaim: a claim's bound volume goes with the claim when its reclaim
policy is Delete, stays `Released` otherwise; a ResourceQuota's claim count at admission, with the
charge a killed create can leak: `leak_claim_charge`), no network and no mock.patch. Every write
is counted in `writes`, every read in `reads`, and every request of any kind (a dry-run create, an
Event, a read of the server's clock too) in `requests`, in order; a test's subclass sees each
request first in `before`."""

from __future__ import annotations

import base64
import copy
import datetime
import itertools
from collections.abc import Mapping
from typing import Any

from swg_operator.kube import KubeApiError, ResourceKind, kind_of
from swg_operator.kube.api import EventType
from swg_operator.kube.cache import WatchCache
from swg_operator.kube.kinds import OWNED_KINDS

OWNED = {(kind.api_version, kind.kind) for kind in OWNED_KINDS}

Key = tuple[str, str, str | None, str]
READ_VERBS = frozenset({"get", "list", "time"})


def _key(obj: Mapping[str, Any]) -> Key:
    meta = obj["metadata"]
    return (obj["apiVersion"], obj["kind"], meta.get("namespace") or None, meta["name"])


def _as_stored(obj: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `obj` as the API server stores it: a Secret's `stringData` is merged into its
    `data`, base64-encoded (write-only, as on the server)."""
    stored = copy.deepcopy(dict(obj))
    if stored.get("kind") == "Secret" and "stringData" in stored:
        data = dict(stored.get("data") or {})
        for key, value in (stored.pop("stringData") or {}).items():
            data[key] = base64.b64encode(str(value).encode()).decode("ascii")
        stored["data"] = data
    return stored


def _matches(labels: Mapping[str, str], selector: str) -> bool:
    for term in filter(None, selector.split(",")):
        key, sep, value = term.partition("=")
        if key not in labels or (sep and labels[key] != value):
            return False
    return True


class FakeKube:
    """Objects keyed by (apiVersion, kind, namespace, name); every write is counted."""

    def __init__(self, *, now: datetime.datetime | None = None) -> None:
        self.objects: dict[Key, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self.writes: list[tuple[str, str]] = []  # (verb, "Kind/ns/name")
        self.reads: list[tuple[str, str, str | None]] = []  # (verb, Kind, namespace)
        # Every request as the API server would see it: (verb, "Kind/ns/name"); `mutating`.
        self.requests: list[tuple[str, str]] = []
        self.server_now = now or datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
        self.fail_next: list[KubeApiError] = []
        # Kinds whose deletion "kills the operator" right after it happened (once each).
        self.crash_after_delete: set[str] = set()
        # PersistentVolumes whose deletion fails (the PV controller marks them `Failed`).
        self.undeletable_volumes: set[str] = set()
        # Per ResourceQuota: claims it is charged for that were never stored (`leak_claim_charge`).
        self.leaked_claim_charges: dict[Key, int] = {}
        # Namespaces where every apply is refused with this error (an admission webhook, say).
        self.refuse_applies: dict[str, KubeApiError] = {}
        self.watchers: list[WatchCache] = []
        self._uids = itertools.count(1)
        self._versions = itertools.count(1)

    # --- helpers for tests ---------------------------------------------------------------------

    def _timestamp(self) -> str:
        return self.server_now.strftime("%Y-%m-%dT%H:%M:%SZ")

    def put(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Store `obj` as if created by someone else (no write counted)."""
        stored = _as_stored(obj)
        meta = stored.setdefault("metadata", {})
        meta.setdefault("uid", f"uid-{next(self._uids)}")
        meta.setdefault("generation", 1)
        meta.setdefault("creationTimestamp", self._timestamp())
        self.objects[_key(stored)] = stored
        return stored

    def edit(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
        """The stored object for a test to change by hand, as `kubectl edit` would (a new
        resourceVersion)."""
        obj = self.find(kind, name, namespace)
        assert obj is not None, f"{kind} {namespace}/{name} does not exist"
        obj["metadata"]["resourceVersion"] = str(next(self._versions))
        self._event(obj)
        return obj

    def find(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        for (_, k, ns, n), obj in self.objects.items():
            if k == kind and n == name and ns == namespace:
                return obj
        return None

    def leak_claim_charge(self, namespace: str, quota: str = "tenant-quota") -> dict[str, Any]:
        """Play a killed create: the API server charged `quota` for a claim it never stored. Its
        status shows the charge (used >= hard) until the quota is deleted (a new quota's usage
        is computed from what exists); meanwhile a new claim is refused (403 exceeded quota)."""
        obj = self.find("ResourceQuota", quota, namespace)
        assert obj is not None, f"ResourceQuota {namespace}/{quota} does not exist"
        self.leaked_claim_charges[_key(obj)] = self.leaked_claim_charges.get(_key(obj), 0) + 1
        hard = str(obj["spec"]["hard"].get("persistentvolumeclaims", "1"))
        obj["status"] = {
            "hard": {"persistentvolumeclaims": hard},
            "used": {"persistentvolumeclaims": str(self._claims_charged(namespace, _key(obj)))},
        }
        return obj

    def _claims_charged(self, namespace: str, quota: Key) -> int:
        stored = sum(
            1 for k in self.objects if k[1] == "PersistentVolumeClaim" and k[2] == namespace
        )
        return stored + self.leaked_claim_charges.get(quota, 0)

    def _admit_claim(self, namespace: str, name: str) -> None:
        """Quota admission of a new claim: refused when a quota's claim count is used up."""
        for key, quota in self.objects.items():
            if key[1] != "ResourceQuota" or key[2] != namespace:
                continue
            hard = (quota.get("spec") or {}).get("hard", {}).get("persistentvolumeclaims")
            used = self._claims_charged(namespace, key)
            if hard is not None and used + 1 > int(hard):
                raise KubeApiError(
                    403,
                    f'persistentvolumeclaims "{name}" is forbidden: exceeded quota: {key[3]}, '
                    f"requested: persistentvolumeclaims=1, used: persistentvolumeclaims={used}, "
                    f"limited: persistentvolumeclaims={hard}",
                    reason="Forbidden",
                )

    @staticmethod
    def _check_version(
        meta: Mapping[str, Any], stored: Mapping[str, Any] | None, name: str
    ) -> None:
        """Optimistic locking: a write naming a resourceVersion other than the stored one is a
        409 Conflict, as on the API server."""
        wanted = meta.get("resourceVersion")
        if wanted is None or stored is None:
            return
        if wanted != stored["metadata"].get("resourceVersion"):
            raise KubeApiError(
                409,
                f'Operation cannot be fulfilled on "{name}": the object has been modified; '
                "please apply your changes to the latest version and try again",
                reason="Conflict",
            )

    def before(self, verb: str, kind: str, namespace: str | None, name: str) -> None:
        """Each request, as `requests` notes it, before it is served: a test's subclass acts here
        (another writer in between, a refusal) or notes what the request needs, with no copy of
        the `KubeApi` method it intercepts. `verb` is apply, create (`create?dryRun`), list,
        get, patch, delete, status (of `kind`), event (`kind` is `Event(reason)`) or time; a
        list by label has the name `?<selector>`."""

    def _request(self, verb: str, kind: str, namespace: str | None, name: str = "") -> None:
        self.before(verb, kind, namespace, name)
        self.requests.append((verb, f"{kind}/{namespace or ''}/{name}"))

    def mutating(self) -> list[tuple[str, str]]:
        """The requests that change something (an Event and a dry-run create included: the API
        server's audit counts them as writes)."""
        return [r for r in self.requests if r[0] not in READ_VERBS]

    def _maybe_fail(self) -> None:
        if self.fail_next:
            raise self.fail_next.pop(0)

    def _event(self, obj: Mapping[str, Any], *, deleted: bool = False) -> None:
        """The watch event of a change, to every cache this fake feeds."""
        for cache in self.watchers:
            cache.saw(obj, deleted=deleted)

    # --- KubeApi -------------------------------------------------------------------------------

    async def apply(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        key = _key(obj)
        self._request("apply", key[1], key[2], key[3])
        self._maybe_fail()
        kind_of(obj)  # unknown kinds are a bug, as with the real adapter
        namespace = key[2]
        if namespace is not None and ("v1", "Namespace", None, namespace) not in self.objects:
            raise KubeApiError(404, f'namespaces "{namespace}" not found', reason="NotFound")
        if namespace in self.refuse_applies:
            raise self.refuse_applies[namespace]
        before = self.objects.get(key)
        if before is None and key[1] == "PersistentVolumeClaim" and namespace is not None:
            self._admit_claim(namespace, key[3])
        self._check_version(obj["metadata"], before, key[3])
        self.writes.append(("apply", f"{key[1]}/{key[2] or ''}/{key[3]}"))
        stored = _as_stored(obj)
        meta = stored["metadata"]
        if before is None:
            meta["uid"] = f"uid-{next(self._uids)}"
            meta["generation"] = 1
            meta["creationTimestamp"] = self._timestamp()
        else:
            meta["uid"] = before["metadata"]["uid"]
            meta["creationTimestamp"] = before["metadata"].get("creationTimestamp")
            changed = before.get("spec") != stored.get("spec")
            meta["generation"] = before["metadata"].get("generation", 1) + int(changed)
            if "status" in before:
                stored["status"] = before["status"]
            meta["resourceVersion"] = before["metadata"].get("resourceVersion")
            if stored == before:  # a no-op apply: no new version, no watch event
                return copy.deepcopy(stored)
        meta["resourceVersion"] = str(next(self._versions))
        self.objects[key] = stored
        self._event(stored)
        return copy.deepcopy(stored)

    async def list_labelled(
        self, kind: ResourceKind, *, selector: str, namespace: str | None = None
    ) -> list[dict[str, Any]]:
        self._request("list", kind.kind, namespace, f"?{selector}")
        self._maybe_fail()
        self.reads.append(("list", kind.kind, namespace))
        found = []
        for (api_version, k, ns, _), obj in self.objects.items():
            if (api_version, k) != (kind.api_version, kind.kind):
                continue
            if namespace is not None and kind.namespaced and ns != namespace:
                continue
            if _matches(obj["metadata"].get("labels") or {}, selector):
                found.append(copy.deepcopy(obj))
        return found

    async def find_named(
        self, kind: ResourceKind, name: str, *, namespace: str
    ) -> dict[str, Any] | None:
        return self._read_one("list", kind, name, namespace)

    async def get(
        self, kind: ResourceKind, name: str, *, namespace: str | None = None
    ) -> dict[str, Any] | None:
        return self._read_one("get", kind, name, namespace)

    def _read_one(
        self, verb: str, kind: ResourceKind, name: str, namespace: str | None
    ) -> dict[str, Any] | None:
        """One object by its name (a GET, or a list with a field selector on the name)."""
        self._request(verb, kind.kind, namespace, name)
        self._maybe_fail()
        self.reads.append((verb, kind.kind, namespace))
        obj = self.objects.get((kind.api_version, kind.kind, namespace, name))
        return copy.deepcopy(obj) if obj is not None else None

    async def create(self, obj: Mapping[str, Any], *, dry_run: bool = False) -> bool:
        key = _key(obj)
        self._request("create?dryRun" if dry_run else "create", key[1], key[2], key[3])
        self._maybe_fail()
        kind_of(obj)
        namespace = key[2]
        if namespace is not None and ("v1", "Namespace", None, namespace) not in self.objects:
            raise KubeApiError(404, f'namespaces "{namespace}" not found', reason="NotFound")
        if key in self.objects:
            return False
        if dry_run:
            return True
        self.writes.append(("create", f"{key[1]}/{key[2] or ''}/{key[3]}"))
        stored = _as_stored(obj)
        stored["metadata"]["uid"] = f"uid-{next(self._uids)}"
        stored["metadata"]["resourceVersion"] = str(next(self._versions))
        stored["metadata"]["creationTimestamp"] = self._timestamp()
        self.objects[key] = stored
        self._event(stored)
        return True

    async def patch(
        self,
        kind: ResourceKind,
        name: str,
        patch: Mapping[str, Any],
        *,
        namespace: str | None = None,
    ) -> dict[str, Any] | None:
        self._request("patch", kind.kind, namespace, name)
        self._maybe_fail()
        key = (kind.api_version, kind.kind, namespace, name)
        if key not in self.objects:
            return None
        obj = self.objects[key]
        self._check_version(patch.get("metadata") or {}, obj, name)
        self.writes.append(("patch", f"{kind.kind}/{namespace or ''}/{name}"))
        _merge(obj, patch)
        obj["metadata"]["resourceVersion"] = str(next(self._versions))
        if kind.kind == "PersistentVolume":
            self._reclaim(name)
        return copy.deepcopy(self.objects.get(key)) if key in self.objects else None

    def _reclaim(self, volume: str) -> None:
        """The PV controller: a released volume is deleted when its policy says Delete."""
        key = ("v1", "PersistentVolume", None, volume)
        pv = self.objects.get(key)
        if pv is None or (pv.get("status") or {}).get("phase") not in ("Released", "Failed"):
            return
        if pv["spec"].get("persistentVolumeReclaimPolicy") != "Delete":
            return
        if volume in self.undeletable_volumes:
            pv["status"] = {"phase": "Failed", "message": "no deleter for this volume"}
            return
        del self.objects[key]

    def _release_volumes(self, namespace: str, claim: str) -> None:
        for key, pv in list(self.objects.items()):
            if key[1] != "PersistentVolume":
                continue
            ref = pv["spec"].get("claimRef") or {}
            if (ref.get("namespace"), ref.get("name")) == (namespace, claim):
                pv["status"] = {"phase": "Released"}
                self._reclaim(key[3])

    async def delete(self, kind: ResourceKind, name: str, *, namespace: str | None = None) -> bool:
        self._request("delete", kind.kind, namespace, name)
        self._maybe_fail()
        key = (kind.api_version, kind.kind, namespace, name)
        if key not in self.objects:
            return False
        self.writes.append(("delete", f"{kind.kind}/{namespace or ''}/{name}"))
        self._event(self.objects.pop(key), deleted=True)
        self.leaked_claim_charges.pop(key, None)
        if kind.kind == "Namespace":  # the namespace controller, instantly
            for other in [k for k in self.objects if k[2] == name]:
                self._event(self.objects.pop(other), deleted=True)
                self.leaked_claim_charges.pop(other, None)
                if other[1] == "PersistentVolumeClaim":
                    self._release_volumes(name, other[3])
        if kind.kind == "PersistentVolumeClaim" and namespace is not None:
            self._release_volumes(namespace, name)
        if kind.kind in self.crash_after_delete:
            self.crash_after_delete.discard(kind.kind)
            raise KubeApiError(0, f"connection lost after deleting {kind.kind} {name}")
        return True

    async def patch_status(
        self, kind: ResourceKind, name: str, status: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        self._request("status", kind.kind, None, name)
        self._maybe_fail()
        obj = self.objects.get((kind.api_version, kind.kind, None, name))
        if obj is None:
            raise KubeApiError(404, f'{kind.plural} "{name}" not found', reason="NotFound")
        self.writes.append(("status", f"{kind.kind}//{name}"))
        merged = dict(obj.get("status") or {})
        for field, value in status.items():
            if value is None:
                merged.pop(field, None)
            else:
                merged[field] = copy.deepcopy(value)
        obj["status"] = merged
        obj["metadata"]["resourceVersion"] = str(next(self._versions))
        return copy.deepcopy(obj)

    async def post_event(
        self,
        *,
        regarding: Mapping[str, Any],
        reason: str,
        message: str,
        type_: EventType = "Normal",
    ) -> None:
        meta = regarding["metadata"]
        self._request("event", f"Event({reason})", meta.get("namespace"), str(meta["name"]))
        self.events.append(
            {
                "name": regarding["metadata"]["name"],
                "kind": regarding.get("kind"),
                "namespace": regarding["metadata"].get("namespace"),
                "reason": reason,
                "message": message,
                "type": type_,
            }
        )

    async def server_time(self) -> datetime.datetime:
        self._request("time", "", None)
        self._maybe_fail()
        return self.server_now


def _merge(target: dict[str, Any], patch: Mapping[str, Any]) -> None:
    """A JSON merge patch (RFC 7386) of `patch` into `target`."""
    for field, value in patch.items():
        if value is None:
            target.pop(field, None)
        elif isinstance(value, Mapping) and isinstance(target.get(field), dict):
            _merge(target[field], value)
        else:
            target[field] = copy.deepcopy(value)
