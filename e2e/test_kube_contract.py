"""The `KubeApi` contract (devtools/kube_contract.py) run against the operator's real adapter
(`HttpKubeApi`) on the cluster tier's API server; tests/test_kube_contract.py runs the same checks
against the in-memory fake of the fast tier."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import kopf
import pytest
from devtools.kube_contract import CHECKS, Check, Place
from devtools.security.manifests import example_spec

from e2e.cluster import Cluster
from e2e.test_crd_admission import CRD_FILE, CRD_NAME
from swg_operator.api import API_VERSION, KIND
from swg_operator.kube.http import HttpKubeApi

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def swg(cluster: Cluster) -> Cluster:
    """The cluster with the committed CRD installed and Established (patch_status needs its
    status subresource)."""
    cluster.kubectl(
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=swg-e2e",
        "-f",
        str(CRD_FILE),
    )
    cluster.kubectl(
        "wait", "--for=condition=Established", f"crd/{CRD_NAME}", "--timeout=60s", timeout=90
    )
    return cluster


def _tenant(name: str) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": name},
        "spec": example_spec("minimal"),
    }


async def _run(check: Check, namespace: str) -> None:
    credentials = kopf.login_with_kubeconfig(settings=kopf.OperatorSettings())
    assert credentials is not None, "the cluster's kubeconfig gave no credentials"
    kube = HttpKubeApi(credentials)
    try:
        await check(kube, Place(namespace=namespace, tenant=_tenant))
    finally:
        await kube.close()


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__)
def test_http_kube_api_keeps_the_contract(
    swg: Cluster,
    make_namespace: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
    check: Check,
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(swg.kubeconfig))
    asyncio.run(_run(check, make_namespace("contract")))
