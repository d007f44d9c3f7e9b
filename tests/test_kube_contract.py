"""The `KubeApi` contract (devtools/kube_contract.py) run against the in-memory fake the unit
tests use; e2e/test_kube_contract.py runs the same checks against the real adapter and API
server, so the fake cannot drift from it unnoticed."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from devtools.kube_contract import CHECKS, Check, Place
from tests.fakes import FakeKube

from swg_operator.api import API_VERSION, KIND


def _tenant(name: str) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": name},
        "spec": {"customer": name},
    }


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__)
def test_fake_kube_keeps_the_contract(check: Check) -> None:
    kube = FakeKube()
    kube.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "contract"}})
    asyncio.run(check(kube, Place(namespace="contract", tenant=_tenant)))
