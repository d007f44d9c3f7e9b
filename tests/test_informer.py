"""The informer's bookkeeping over a scripted API server: the first LIST, watch events and
bookmarks, a watch resumed where it stopped, and a LIST again after 410 Gone that tells of every
change and deletion missed. The real API server's side is e2e/test_informer.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from swg_operator import metrics
from swg_operator.kube.api import KubeApiError
from swg_operator.kube.http import split_lines
from swg_operator.kube.informer import EventHandler, Informer, retry_delay
from swg_operator.kube.kinds import CONFIG_MAP, ResourceKind

LABEL = "swg.dev/tenant"


def cm(name: str, version: int, tenant: str = "acme") -> dict[str, Any]:
    # As lists and watches give them: no apiVersion or kind on the items.
    return {
        "metadata": {
            "name": name,
            "namespace": f"swg-{tenant}",
            "resourceVersion": str(version),
            "labels": {LABEL: tenant},
        },
        "data": {"v": str(version)},
    }


class Script:
    """Answers LISTs with `listed` and each WATCH with the next list of `watches` (an item that
    is an exception is raised); records the resourceVersion every watch started from."""

    def __init__(self, listed: list[list[dict[str, Any]]], watches: list[list[Any]]) -> None:
        self.listed = listed
        self.watches = watches
        self.lists = 0
        self.started_from: list[str] = []
        self.done = asyncio.Event()

    async def list_versioned(
        self, kind: ResourceKind, *, selector: str
    ) -> tuple[list[dict[str, Any]], str]:
        items = self.listed[min(self.lists, len(self.listed) - 1)]
        self.lists += 1
        top = max((int(o["metadata"]["resourceVersion"]) for o in items), default=1)
        return items, str(top)

    async def watch(
        self, kind: ResourceKind, *, selector: str, resource_version: str
    ) -> AsyncIterator[dict[str, Any]]:
        self.started_from.append(resource_version)
        if not self.watches:
            self.done.set()
            await asyncio.Event().wait()  # an idle watch: until cancelled
        for item in self.watches.pop(0):
            if isinstance(item, Exception):
                raise item
            yield item


def run(
    script: Script, handler: EventHandler | None = None
) -> tuple[Informer, list[tuple[str | None, str, str]]]:
    """Run an informer over `script` until its watches are spent; what it told (`handler`,
    besides)."""
    seen: list[tuple[str | None, str, str]] = []

    def told(kind: str | None, obj: dict[str, Any]) -> None:
        assert (obj["apiVersion"], obj["kind"]) == ("v1", "ConfigMap")
        seen.append((kind, obj["metadata"]["name"], obj["metadata"]["resourceVersion"]))
        if handler is not None:
            handler(kind, obj)

    async def go() -> Informer:
        informer = Informer(
            script, CONFIG_MAP, selector="x", index_label=LABEL, on_event=told, jitter=lambda: 0.0
        )
        task = asyncio.create_task(informer.run())
        await asyncio.wait_for(script.done.wait(), timeout=30)
        task.cancel()
        return informer

    return asyncio.run(go()), seen


def names(informer: Informer, tenant: str = "acme") -> dict[str, str]:
    unpacked = [p.unpack() for p in informer.by_label(tenant)]
    return {o["metadata"]["name"]: o["metadata"]["resourceVersion"] for o in unpacked}


def test_the_first_list_fills_the_store_and_watch_events_keep_it() -> None:
    script = Script(
        [[cm("a", 5), cm("b", 6, tenant="beta")]],
        [
            [
                {"type": "ADDED", "object": cm("c", 7)},
                {"type": "MODIFIED", "object": cm("a", 8)},
                {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "9"}}},
                {"type": "DELETED", "object": cm("b", 10, tenant="beta")},
            ]
        ],
    )
    informer, seen = run(script)
    assert names(informer) == {"a": "8", "c": "7"}
    assert names(informer, "beta") == {}
    assert len(informer) == 2
    assert informer.synced.is_set()
    assert seen == [
        (None, "a", "5"),
        (None, "b", "6"),
        ("ADDED", "c", "7"),
        ("MODIFIED", "a", "8"),
        ("DELETED", "b", "10"),
    ]
    # The watch started from the list's version, and went on from the last event's.
    assert script.started_from == ["6", "10"]
    assert script.lists == 1


def test_a_watch_that_fails_is_opened_again_where_it_stopped() -> None:
    script = Script(
        [[cm("a", 5)]],
        [
            [{"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "12"}}}],
            [KubeApiError(0, "connection reset", reason="NoAnswer")],
            [{"type": "MODIFIED", "object": cm("a", 13)}],
        ],
    )
    informer, seen = run(script)
    assert seen[-1] == ("MODIFIED", "a", "13")
    assert script.started_from == ["5", "12", "12", "13"]
    assert script.lists == 1
    assert names(informer) == {"a": "13"}


@pytest.mark.parametrize(
    "expiry",
    [
        {"type": "ERROR", "object": {"kind": "Status", "code": 410, "message": "too old"}},
        KubeApiError(410, "too old", reason="Expired"),
    ],
    ids=["event", "answer"],
)
def test_after_410_gone_the_list_again_tells_what_changed_and_what_went(expiry: Any) -> None:
    script = Script(
        [[cm("a", 5), cm("b", 6), cm("c", 7)], [cm("a", 5), cm("b", 20), cm("d", 21)]],
        [[expiry]],
    )
    informer, seen = run(script)
    assert script.lists == 2
    assert names(informer) == {"a": "5", "b": "20", "d": "21"}
    after = seen[3:]
    assert sorted(after) == [
        ("DELETED", "c", "7"),
        ("MODIFIED", "b", "20"),
        ("MODIFIED", "d", "21"),
    ]
    assert script.started_from[-1] == "21"


def test_an_object_whose_label_changed_moves_to_its_new_value() -> None:
    moved = cm("a", 6)
    moved["metadata"]["labels"][LABEL] = "beta"
    script = Script([[cm("a", 5)]], [[{"type": "MODIFIED", "object": moved}]])
    informer, _ = run(script)
    assert names(informer) == {}
    assert names(informer, "beta") == {"a": "6"}


def test_a_handler_that_fails_costs_a_list_again_not_the_watch() -> None:
    script = Script([[cm("a", 5)], [cm("a", 6)]], [[{"type": "MODIFIED", "object": cm("a", 6)}]])

    def broken(kind: str | None, obj: dict[str, Any]) -> None:
        if kind == "MODIFIED":
            raise RuntimeError("a bug")

    informer, seen = run(script, broken)
    assert script.lists == 2
    assert seen[:2] == [(None, "a", "5"), ("MODIFIED", "a", "6")]
    assert names(informer) == {"a": "6"}


def test_retries_wait_longer_each_time_up_to_a_cap() -> None:
    delays = [retry_delay(n, jitter=lambda: 1.0) for n in range(1, 10)]
    assert delays[:3] == [0.5, 1.0, 2.0]
    assert max(delays) == 30.0
    assert retry_delay(1, jitter=lambda: 0.0) == 0.25


def test_watch_answers_are_cut_into_lines_across_chunks() -> None:
    lines, rest = split_lines(b"", b'{"a":1}\n{"b"')
    assert (lines, rest) == ([b'{"a":1}'], b'{"b"')
    lines, rest = split_lines(rest, b':2}\n\n{"c":3}\n')
    assert (lines, rest) == ([b'{"b":2}', b'{"c":3}'], b"")


def test_a_deletion_found_by_listing_again_names_the_tenant_it_was_of() -> None:
    """The handler maps an event to its tenant by label: a deletion missed while the watch was
    gone must carry the labels the object last had, or no reconcile re-creates it."""
    expired = {"type": "ERROR", "object": {"kind": "Status", "code": 410}}
    script = Script([[cm("a", 5), cm("c", 7, tenant="beta")], [cm("a", 5)]], [[expired]])
    deleted: list[dict[str, Any]] = []

    def keep(kind: str | None, obj: dict[str, Any]) -> None:
        if kind == "DELETED":
            deleted.append(obj)

    run(script, keep)
    assert [o["metadata"]["labels"] for o in deleted] == [{LABEL: "beta"}]
    assert deleted[0]["metadata"]["namespace"] == "swg-beta"


def test_watch_events_are_counted_by_kind_and_type_bookmarks_not() -> None:
    def count(kind: str) -> float:
        return float(metrics.WATCH_EVENTS.labels(kind="ConfigMap", type=kind)._value.get())

    before = {kind: count(kind) for kind in ("ADDED", "MODIFIED", "BOOKMARK")}
    bookmark = {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "4"}}}
    added, modified = (
        {"type": "ADDED", "object": cm("c", 2)},
        {"type": "MODIFIED", "object": cm("c", 3)},
    )
    run(Script([[cm("a", 1)]], [[added, modified, modified, bookmark]]))
    after = {kind: count(kind) for kind in before}
    assert after["ADDED"] - before["ADDED"] == 1  # the first LIST's objects are no events
    assert after["MODIFIED"] - before["MODIFIED"] == 2
    assert after["BOOKMARK"] == before["BOOKMARK"]
