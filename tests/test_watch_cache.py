"""The watch cache lays the operator's own writes over a watch that has not reported them yet,
and lets the watch win as soon as it reports them, or anything newer."""

from __future__ import annotations

from typing import Any

from swg_operator.kube.cache import PATIENCE, WatchCache, slim


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
        children_of=lambda label: list(watched.values()) if label == "acme" else [],
        config_maps_of=list,
        clock=lambda: now[0],
    )


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
