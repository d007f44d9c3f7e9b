"""The informer on the cluster tier's API server: it lists and then watches only the labelled
objects of a kind, across namespaces, and keeps them. (A watch from a version the server no
longer has, 410 Gone, needs an etcd compaction to provoke: tests/test_informer.py covers both of
its forms, and the chaos tests restart etcd under the running operator.)"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import kopf
import pytest

from e2e.cluster import Cluster
from swg_operator.kube.http import HttpKubeApi
from swg_operator.kube.informer import Informer
from swg_operator.kube.kinds import CONFIG_MAP

pytestmark = pytest.mark.cluster

LABEL = "swg.dev/e2e-informer"
TIMEOUT = 30.0


def config_map(name: str, namespace: str, value: str, *, labelled: bool = True) -> dict[str, Any]:
    labels = {LABEL: namespace} if labelled else {}
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "data": {"value": value},
    }


def kube_api(cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> HttpKubeApi:
    monkeypatch.setenv("KUBECONFIG", str(cluster.kubeconfig))
    credentials = kopf.login_with_kubeconfig(settings=kopf.OperatorSettings())
    assert credentials is not None, "the cluster's kubeconfig gave no credentials"
    return HttpKubeApi(credentials)


async def _until(told: asyncio.Event, check: Callable[[], bool], what: str) -> None:
    """Until `check()` holds, judged again after each event the informer tells (`told`)."""

    async def each_event() -> None:
        while not check():
            told.clear()
            await told.wait()

    try:
        await asyncio.wait_for(each_event(), timeout=TIMEOUT)
    except TimeoutError:
        raise AssertionError(f"not within {TIMEOUT:.0f}s: {what}") from None


def test_an_informer_follows_the_labelled_objects_of_a_kind(
    cluster: Cluster, make_namespace: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = make_namespace("informer-a"), make_namespace("informer-b")
    cluster.apply(config_map("before", first, "1"))
    seen: list[tuple[str | None, str, str]] = []
    news = asyncio.Event()

    def told(kind: str | None, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        seen.append((kind, meta["namespace"], meta["name"]))
        news.set()

    def events(kind: str | None) -> set[tuple[str, str]]:
        return {(ns, name) for k, ns, name in seen if k == kind}

    def stored(namespace: str) -> dict[str, str]:
        objects = [p.unpack() for p in informer.by_label(namespace)]
        return {o["metadata"]["name"]: o["data"]["value"] for o in objects}

    kube = kube_api(cluster, monkeypatch)
    informer = Informer(kube, CONFIG_MAP, selector=LABEL, index_label=LABEL, on_event=told)

    async def scenario() -> None:
        task = asyncio.create_task(informer.run())
        try:
            await asyncio.wait_for(informer.synced.wait(), timeout=TIMEOUT)
            assert (first, "before") in events(None)
            assert stored(first) == {"before": "1"}
            await asyncio.to_thread(cluster.apply, config_map("added", second, "2"))
            await asyncio.to_thread(cluster.apply, config_map("plain", second, "x", labelled=False))
            await asyncio.to_thread(cluster.apply, config_map("before", first, "3"))
            await _until(
                news, lambda: (second, "added") in events("ADDED"), "the new object's ADDED"
            )
            await _until(news, lambda: stored(first) == {"before": "3"}, "the change kept")
            assert (first, "before") in events("MODIFIED")
            await asyncio.to_thread(
                cluster.kubectl, "delete", "configmap", "added", "-n", second, "--wait=false"
            )
            await _until(news, lambda: (second, "added") in events("DELETED"), "the deletion told")
            assert stored(second) == {}
            assert all(name != "plain" for _, _, name in seen), "an unlabelled object was seen"
            assert informer.synced.is_set()
        finally:
            task.cancel()
            await kube.close()

    asyncio.run(scenario())
