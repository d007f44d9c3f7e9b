"""A tenant and the in-memory API server with a reconcile context on it, for the tests that run
the reconcile against `fakes.FakeKube`."""

from __future__ import annotations

import datetime
from typing import Any

from fakes import FakeKube
from swg_operator.api import FINALIZER, OperatorSettings
from swg_operator.reconcile.loop import Context


def stored_tenant(name: str = "acme", *, uid: str = "1234abcd-0000", **spec: Any) -> dict[str, Any]:
    """A SecureWebGateway as the API server stores it once kopf has seen it (a uid,
    generation 1, the purge finalizer): a minimal spec with `spec` laid over it."""
    return {
        "apiVersion": "swg.dev/v1alpha1",
        "kind": "SecureWebGateway",
        "metadata": {
            "name": name,
            "uid": uid,
            "generation": 1,
            "finalizers": [FINALIZER],
        },
        "spec": {
            "serviceCode": "SWG-0001",
            "sizing": {"endpoints": 50, "requestsPerSecond": 20},
            "clients": {"allowedCIDRs": ["192.0.2.0/24"]},
            **spec,
        },
    }


def fake_cluster(
    body: dict[str, Any], settings: OperatorSettings, now: datetime.datetime
) -> tuple[FakeKube, Context]:
    """The in-memory API server holding the operator's namespace and `body`, and a reconcile
    context on it whose clock stands at `now`."""
    kube = FakeKube(now=now)
    kube.put(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": settings.operator_namespace}}
    )
    kube.put(body)
    return kube, Context(kube=kube, settings=settings, clock=lambda: now)
