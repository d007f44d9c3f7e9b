"""What a chaos run is judged against: the objects the operator would render, the live cluster.

`renderer` gives the desired objects of an `Expected` tenant exactly as the operator renders
and stamps them; `snapshot` reads the tenants, their labelled objects and the purge receipts
from the control plane for `bench.chaos.checks`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from e2e.cluster import ControlPlane
from e2e.operator_process import OWNED_KINDS

from bench.chaos.checks import Expected, Snapshot


def renderer(operator_namespace: str) -> Callable[[Expected], list[dict[str, Any]]]:
    """The desired objects of an `Expected` tenant, as the operator renders them (the sample
    catalogue is what `install_prerequisites` imports)."""
    from swg_operator.api import OperatorSettings, parse_spec
    from swg_operator.commands.render import read_catalogue
    from swg_operator.reconcile.ownership import stamp
    from swg_operator.render import Lifecycle, render_tenant
    from swg_operator.sizing_io import load_capacity

    catalogue = read_catalogue(None)
    settings = OperatorSettings.model_validate({"operatorNamespace": operator_namespace})
    capacity = load_capacity()

    def render(e: Expected) -> list[dict[str, Any]]:
        lifecycle = Lifecycle.CANCELLED if e.deleted else Lifecycle.ACTIVE
        manifests = render_tenant(
            e.name,
            parse_spec(dict(e.spec)),
            catalogue=catalogue,
            settings=settings,
            capacity=capacity,
            lifecycle=lifecycle,
        )
        # As the operator applies them: its Namespace stamped with the tenant's UID.
        return list(stamp(manifests.objects, manifests.namespace, e.uid))

    return render


def snapshot(plane: ControlPlane, names: Sequence[str], operator_namespace: str) -> Snapshot:
    """Live tenants among `names`, every object labelled for any tenant, every purge receipt."""
    tenants = {
        item["metadata"]["name"]: item
        for item in plane.kubectl_json("get", "securewebgateways")["items"]
        if item["metadata"]["name"] in set(names)
    }
    objects = plane.kubectl_json("get", OWNED_KINDS, "-A", "-l", "swg.dev/tenant")["items"]
    receipts = plane.kubectl_json(
        "get", "configmaps", "-n", operator_namespace, "-l", "swg.dev/purge-receipt=true"
    )["items"]
    return Snapshot(tenants=tenants, objects=objects, receipts=receipts)
