"""The contract of `swg_operator.kube.KubeApi`, written once and run against both of its
implementations: the in-memory fake of the fast tier (`tests/test_kube_contract.py`) and the real
`HttpKubeApi` on the cluster tier's API server (`e2e/test_kube_contract.py`).

Each check is `async (kube, place) -> None`: `place.namespace` exists and is empty and
`place.tenant(name)` is a SecureWebGateway manifest the API server admits. A check raises
`AssertionError` where the implementation breaks the contract, so a fake that drifts from the API
server fails the fast tier instead of letting a unit test pass on behaviour that never happens.
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from swg_operator.kube import KubeApi, KubeApiError
from swg_operator.kube.kinds import CONFIG_MAP, SECRET, TENANT


@dataclass(frozen=True)
class Place:
    """Where a check may write: an existing, empty namespace and a tenant manifest factory."""

    namespace: str
    tenant: Callable[[str], dict[str, Any]]


Check = Callable[[KubeApi, Place], Awaitable[None]]


def config_map(
    namespace: str, name: str, data: Mapping[str, str], labels: Mapping[str, str] | None = None
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels or {})},
        "data": dict(data),
    }


def _refused(error: KubeApiError, status: int, reason: str, *, transient: bool) -> None:
    assert (error.status, error.reason, error.transient) == (status, reason, transient), (
        f"expected {status} {reason} (transient={transient}), got {error!r}"
    )


async def apply_then_get(kube: KubeApi, place: Place) -> None:
    """An apply returns the object as stored (a resourceVersion, a uid); `get` returns the same."""
    stored = await kube.apply(config_map(place.namespace, "applied", {"a": "1"}))
    meta = stored["metadata"]
    assert meta["resourceVersion"], meta
    assert meta["uid"], meta
    assert (stored["apiVersion"], stored["kind"], stored["data"]) == ("v1", "ConfigMap", {"a": "1"})
    got = await kube.get(CONFIG_MAP, "applied", namespace=place.namespace)
    assert got is not None
    assert got["data"] == {"a": "1"}
    assert got["metadata"]["resourceVersion"] == meta["resourceVersion"]
    assert got["metadata"]["uid"] == meta["uid"]


async def apply_is_idempotent(kube: KubeApi, place: Place) -> None:
    """The same apply twice changes nothing, not even the resourceVersion; a changed one does,
    and keeps the uid."""
    manifest = config_map(place.namespace, "again", {"a": "1"})
    first = await kube.apply(manifest)
    second = await kube.apply(manifest)
    assert second["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    assert second["data"] == first["data"]
    third = await kube.apply(config_map(place.namespace, "again", {"a": "2"}))
    assert third["metadata"]["resourceVersion"] != first["metadata"]["resourceVersion"]
    assert third["metadata"]["uid"] == first["metadata"]["uid"]
    assert third["data"] == {"a": "2"}


async def apply_stores_secret_string_data_as_data(kube: KubeApi, place: Place) -> None:
    """A Secret's stringData is write-only: it is stored base64-encoded in `data`."""
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "secret", "namespace": place.namespace},
        "type": "Opaque",
        "stringData": {"key": "value"},
    }
    stored = await kube.apply(secret)
    got = await kube.get(SECRET, "secret", namespace=place.namespace)
    for obj in (stored, got):
        assert obj is not None
        assert "stringData" not in obj, obj
        assert obj["data"] == {"key": base64.b64encode(b"value").decode()}


async def apply_into_a_missing_namespace_is_404(kube: KubeApi, place: Place) -> None:
    try:
        await kube.apply(config_map(f"{place.namespace}-missing", "x", {}))
    except KubeApiError as error:
        _refused(error, 404, "NotFound", transient=False)
    else:
        raise AssertionError("an apply into a missing namespace was accepted")


async def stale_resource_version_is_409(kube: KubeApi, place: Place) -> None:
    """An apply or patch naming a resourceVersion other than the stored one is a 409 Conflict,
    which is transient (read again, retry)."""
    first = await kube.apply(config_map(place.namespace, "locked", {"a": "1"}))
    await kube.apply(config_map(place.namespace, "locked", {"a": "2"}))
    stale = config_map(place.namespace, "locked", {"a": "3"})
    stale["metadata"]["resourceVersion"] = first["metadata"]["resourceVersion"]
    old = {"metadata": {"resourceVersion": first["metadata"]["resourceVersion"]}, "data": {}}

    async def apply_stale() -> object:
        return await kube.apply(stale)

    async def patch_stale() -> object:
        return await kube.patch(CONFIG_MAP, "locked", old, namespace=place.namespace)

    for attempt in (apply_stale, patch_stale):
        try:
            await attempt()
        except KubeApiError as error:
            _refused(error, 409, "Conflict", transient=True)
        else:
            raise AssertionError("a write with a stale resourceVersion was accepted")
    got = await kube.get(CONFIG_MAP, "locked", namespace=place.namespace)
    assert got is not None
    assert got["data"] == {"a": "2"}


async def create_refuses_an_existing_name(kube: KubeApi, place: Place) -> None:
    """`create` stores a new object, says False for a taken name and never changes it; a dry
    run stores nothing."""
    assert await kube.create(config_map(place.namespace, "dry", {"a": "1"}), dry_run=True)
    assert await kube.get(CONFIG_MAP, "dry", namespace=place.namespace) is None
    assert await kube.create(config_map(place.namespace, "created", {"a": "1"}))
    assert not await kube.create(config_map(place.namespace, "created", {"a": "2"}))
    assert not await kube.create(config_map(place.namespace, "created", {"a": "2"}), dry_run=True)
    got = await kube.get(CONFIG_MAP, "created", namespace=place.namespace)
    assert got is not None
    assert got["data"] == {"a": "1"}
    assert got["metadata"]["resourceVersion"]
    assert got["metadata"]["uid"]


async def list_by_label_selector_and_namespace(kube: KubeApi, place: Place) -> None:
    """A selector `k=v` matches that value, a bare `k` any value; items carry apiVersion and
    kind; the namespace bounds the list."""
    for name, labels in (
        ("one", {"contract": "x", "tier": "a"}),
        ("two", {"contract": "x", "tier": "b"}),
        ("three", {"contract": "y"}),
        ("four", {}),
    ):
        await kube.apply(config_map(place.namespace, name, {}, labels))

    async def names(selector: str, namespace: str | None = place.namespace) -> set[str]:
        items = await kube.list_labelled(CONFIG_MAP, selector=selector, namespace=namespace)
        for item in items:
            assert (item["apiVersion"], item["kind"]) == ("v1", "ConfigMap"), item
        return {
            item["metadata"]["name"]
            for item in items
            if item["metadata"].get("namespace") == place.namespace
        }

    assert await names("contract=x") == {"one", "two"}
    assert await names("contract") == {"one", "two", "three"}
    assert await names("contract=x,tier=b") == {"two"}
    assert await names("contract=z") == set()
    assert await names("contract=x", namespace=None) == {"one", "two"}
    elsewhere = await kube.list_labelled(
        CONFIG_MAP, selector="contract", namespace=f"{place.namespace}-missing"
    )
    assert elsewhere == []


async def find_named_finds_only_that_name(kube: KubeApi, place: Place) -> None:
    await kube.apply(config_map(place.namespace, "named", {"a": "1"}))
    await kube.apply(config_map(place.namespace, "named-too", {"a": "2"}))
    found = await kube.find_named(CONFIG_MAP, "named", namespace=place.namespace)
    assert found is not None
    assert (found["apiVersion"], found["kind"], found["data"]) == ("v1", "ConfigMap", {"a": "1"})
    assert found["metadata"]["resourceVersion"]
    assert await kube.find_named(CONFIG_MAP, "nameless", namespace=place.namespace) is None
    missing = f"{place.namespace}-missing"
    assert await kube.find_named(CONFIG_MAP, "named", namespace=missing) is None


async def missing_objects_read_as_absent(kube: KubeApi, place: Place) -> None:
    """get, patch and delete of a missing object answer None/False, never an error."""
    assert await kube.get(CONFIG_MAP, "absent", namespace=place.namespace) is None
    assert await kube.patch(CONFIG_MAP, "absent", {"data": {}}, namespace=place.namespace) is None
    assert not await kube.delete(CONFIG_MAP, "absent", namespace=place.namespace)
    await kube.apply(config_map(place.namespace, "doomed", {}))
    assert await kube.delete(CONFIG_MAP, "doomed", namespace=place.namespace)
    assert await kube.get(CONFIG_MAP, "doomed", namespace=place.namespace) is None
    assert not await kube.delete(CONFIG_MAP, "doomed", namespace=place.namespace)


async def patch_merges_and_returns_the_stored_object(kube: KubeApi, place: Place) -> None:
    """A JSON merge patch: a null removes a key, others are set; the answer is as stored."""
    first = await kube.apply(config_map(place.namespace, "patched", {"a": "1", "b": "2"}))
    patched = await kube.patch(
        CONFIG_MAP, "patched", {"data": {"a": None, "c": "3"}}, namespace=place.namespace
    )
    assert patched is not None
    assert patched["data"] == {"b": "2", "c": "3"}
    assert patched["metadata"]["resourceVersion"] != first["metadata"]["resourceVersion"]
    got = await kube.get(CONFIG_MAP, "patched", namespace=place.namespace)
    assert got == patched


async def patch_status_returns_the_stored_object(kube: KubeApi, place: Place) -> None:
    """patch_status merges into `status` only (a None removes a field), returns the object as
    stored with a new resourceVersion; a missing object is a 404."""
    name = f"{place.namespace}-status"
    applied = await kube.apply(place.tenant(name))
    try:
        first = await kube.patch_status(TENANT, name, {"phase": "Ready", "namespace": "hello"})
        assert first is not None
        assert first["status"]["phase"] == "Ready"
        assert first["status"]["namespace"] == "hello"
        assert first["spec"] == applied["spec"]
        rv = first["metadata"]["resourceVersion"]
        assert rv != applied["metadata"]["resourceVersion"]
        second = await kube.patch_status(TENANT, name, {"namespace": None})
        assert second is not None
        assert second["status"]["phase"] == "Ready"
        assert "namespace" not in second["status"]
        got = await kube.get(TENANT, name)
        assert got is not None
        assert got["status"] == second["status"]
        assert got["metadata"]["resourceVersion"] == second["metadata"]["resourceVersion"]
        # A re-apply of the spec keeps the status (it belongs to the status subresource).
        again = await kube.apply(place.tenant(name))
        assert again["status"] == second["status"]
    finally:
        await kube.delete(TENANT, name)
    try:
        await kube.patch_status(TENANT, name, {"phase": "Ready"})
    except KubeApiError as error:
        _refused(error, 404, "NotFound", transient=False)
    else:
        raise AssertionError("patch_status of a missing object was accepted")


CHECKS: tuple[Check, ...] = (
    apply_then_get,
    apply_is_idempotent,
    apply_stores_secret_string_data_as_data,
    apply_into_a_missing_namespace_is_404,
    stale_resource_version_is_409,
    create_refuses_an_existing_name,
    list_by_label_selector_and_namespace,
    find_named_finds_only_that_name,
    missing_objects_read_as_absent,
    patch_merges_and_returns_the_stored_object,
    patch_status_returns_the_stored_object,
)
