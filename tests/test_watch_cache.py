"""The watch cache lays the operator's own writes over a watch that has not reported them yet,
and lets the watch win as soon as it reports them, or anything newer."""

from __future__ import annotations

from typing import Any

import pytest

from swg_operator.kube.cache import PATIENCE, Packed, WatchCache, pack, slim


def obj(name: str, version: int, **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": "swg-acme",
            "resourceVersion": str(version),
            "labels": {"swg.dev/tenant": "acme"},
        },
        "data": data,
    }


def cache_over(watched: dict[str, dict[str, Any]], now: list[float]) -> WatchCache:
    return WatchCache(
        children_of=lambda label: [packed(o) for o in watched.values()] if label == "acme" else [],
        config_maps_of=list,
        clock=lambda: now[0],
    )


def packed(body: dict[str, Any]) -> Packed:
    return pack(body, api_version=body["apiVersion"], kind=body["kind"])


def names(cache: WatchCache) -> dict[str, str]:
    return {o["metadata"]["name"]: o["metadata"]["resourceVersion"] for o in cache.children("acme")}


def test_a_write_shows_until_the_watch_reports_it() -> None:
    watched = {"a": obj("a", 5)}
    now = [0.0]
    cache = cache_over(watched, now)
    cache.wrote(obj("a", 9))
    cache.wrote(obj("b", 10))
    assert names(cache) == {"a": "9", "b": "10"}
    watched["a"] = obj("a", 9)
    watched["b"] = obj("b", 10)
    cache.saw(watched["a"])
    cache.saw(watched["b"])
    del watched["b"]  # deleted by hand after the watch reported it
    cache.saw(obj("b", 11), deleted=True)
    assert names(cache) == {"a": "9"}


def test_a_newer_watched_version_wins_and_a_deletion_hides_the_old_copy() -> None:
    watched = {"a": obj("a", 5), "c": obj("c", 6)}
    now = [0.0]
    cache = cache_over(watched, now)
    cache.wrote(obj("a", 9))
    watched["a"] = obj("a", 12)  # edited by hand after the operator's write
    assert names(cache)["a"] == "12"
    cache.deleted(watched["c"])
    assert "c" not in names(cache)  # the watch still lists it: not yet reported
    watched["c"] = obj("c", 20)  # made again since
    cache.saw(watched["c"])
    assert names(cache)["c"] == "20"


def test_an_event_that_never_comes_is_waited_for_a_while_only() -> None:
    watched: dict[str, dict[str, Any]] = {}
    now = [0.0]
    cache = cache_over(watched, now)
    cache.wrote(obj("a", 9))
    assert names(cache) == {"a": "9"}
    now[0] = PATIENCE + 1
    assert names(cache) == {}


def test_slim_drops_managed_fields_and_names_the_kind() -> None:
    body = {"metadata": {"name": "a", "managedFields": [{"manager": "x"}]}, "data": {}}
    kept = slim(body, api_version="v1", kind="ConfigMap")
    assert kept["kind"] == "ConfigMap"
    assert kept["apiVersion"] == "v1"
    assert "managedFields" not in kept["metadata"]
    assert "managedFields" in body["metadata"]


def test_a_packed_object_unpacks_to_a_fresh_copy_of_its_slim_form() -> None:
    body = {
        "metadata": {"name": "a", "managedFields": [{"manager": "x"}], "labels": {"k": "v"}},
        "data": {"x": "é"},
    }
    kept = pack(body, api_version="v1", kind="ConfigMap")
    first = kept.unpack()
    assert first == slim(body, api_version="v1", kind="ConfigMap")
    first["metadata"]["labels"]["k"] = "changed"
    assert kept.unpack()["metadata"]["labels"] == {"k": "v"}


def test_a_read_never_hands_out_the_operator_s_own_copy_of_a_write() -> None:
    watched: dict[str, dict[str, Any]] = {}
    cache = cache_over(watched, [0.0])
    cache.wrote(obj("a", 9))
    cache.children("acme")[0]["metadata"]["name"] = "changed"
    assert names(cache) == {"a": "9"}


def test_what_is_derived_from_the_config_maps_is_made_again_only_once_they_change() -> None:
    platform = [packed(obj("catalogue", 1, a="1"))]
    cache = WatchCache(children_of=lambda label: [], config_maps_of=lambda: list(platform))
    made: list[int] = []

    def count(config_maps: list[dict[str, Any]]) -> int:
        made.append(len(config_maps))
        return sum(len(o["data"]) for o in config_maps)

    assert cache.derived("n", count) == 1
    platform[0] = packed(obj("catalogue", 1, a="1"))  # the same object, listed again
    assert cache.derived("n", count) == 1
    assert made == [1]
    platform.append(packed(obj("signatures", 2, b="2", c="3")))
    assert cache.derived("n", count) == 3
    assert made == [1, 2]


def test_nothing_is_kept_of_a_derivation_that_failed() -> None:
    platform = [packed(obj("catalogue", 1))]
    cache = WatchCache(children_of=lambda label: [], config_maps_of=lambda: list(platform))
    calls: list[int] = []

    def broken(config_maps: list[dict[str, Any]]) -> int:
        calls.append(1)
        raise ValueError("unusable")

    for _ in range(2):
        with pytest.raises(ValueError, match="unusable"):
            cache.derived("n", broken)
    assert calls == [1, 1]


def test_a_read_of_one_kind_unpacks_no_other_and_keeps_the_others_writes() -> None:
    namespace = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": "swg-acme",
            "resourceVersion": "3",
            "labels": {"swg.dev/tenant": "acme"},
        },
    }
    broken = Packed(b"not zlib", "ConfigMap")  # unpacking it would raise
    now = [0.0]
    cache = WatchCache(
        children_of=lambda label: [packed(namespace), broken],
        config_maps_of=list,
        clock=lambda: now[0],
    )
    cache.wrote(obj("mine", 9))  # a ConfigMap the watch has not reported
    found = cache.children("acme", kind="Namespace")
    assert [o["metadata"]["name"] for o in found] == ["swg-acme"]
    # The ConfigMap write is still laid over the watch for a read of every kind.
    cache.children_of = lambda label: [packed(namespace)]
    assert {o["metadata"]["name"] for o in cache.children("acme")} == {"swg-acme", "mine"}
