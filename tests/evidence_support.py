"""Facts of the evidence command made from what the renderer makes for an example tenant, as the
API server would return them, for tests/test_evidence*.py to judge and to break."""

from __future__ import annotations

import copy
import datetime
from collections.abc import Mapping, Sequence
from dataclasses import replace
from functools import cache
from typing import Any

from render_support import capacity, catalogue, example_spec
from swg_operator.api import OperatorSettings, parse_spec
from swg_operator.commands.evidence.judge import QUESTIONS
from swg_operator.commands.evidence.model import AccessAnswer, Facts, Reading
from swg_operator.naming import tenant_namespace
from swg_operator.notices import events
from swg_operator.notices.model import History, add, encode
from swg_operator.reconcile.secrets import generate_inspection_ca
from swg_operator.render import Lifecycle, render_tenant
from swg_operator.render.contract_view import contract_view
from swg_operator.render.resources import quota_hard

NOW = datetime.datetime(2026, 12, 1, 12, 0, tzinfo=datetime.UTC)
OTHER = "swg-other-tenant"


@cache
def ca_certificate() -> str:
    return generate_inspection_ca(tenant="example-corp", service_code="SWG-1", now=NOW).certificate


def listing(objects: Sequence[Mapping[str, Any]]) -> Reading:
    return Reading(200, {"items": copy.deepcopy(objects)})


def notices_data(*, failed: bool = False) -> dict[str, str]:
    notice = events.change("t", service_code="SWG-1", generation=1, changes=[], at=NOW)
    history = add(History(), notice, ["ops@example.com"], now=NOW)
    data = encode(history)
    if failed:
        data["mail.json"] = data["mail.json"].replace('"pending"', '"failed"')
    return data


def answers(spec: dict[str, Any], *, other: str | None = OTHER) -> tuple[AccessAnswer, ...]:
    """Every admin answered exactly as the ClusterRole grants."""
    out = []
    for admin in spec.get("admins") or ():
        who = f"{admin['kind'].lower()} {admin['name']}"
        for verb, resource, sub, name, expected, elsewhere in QUESTIONS:
            if elsewhere and other is None:
                continue
            namespace = other if elsewhere and other else "ns"
            full = f"{resource}/{sub}" if sub else resource
            out.append(AccessAnswer(who, namespace, verb, full, name, expected, expected))
    return tuple(out)


def facts_for(
    example: str = "full", *, lifecycle: Lifecycle = Lifecycle.ACTIVE, **spec_changes: Any
) -> Facts:
    """The facts of example tenant `example` as a freshly reconciled cluster shows them to the
    platform team."""
    name, raw = example_spec(example)
    raw = {**copy.deepcopy(raw), **spec_changes}
    if lifecycle is Lifecycle.SUSPENDED:
        raw["suspended"] = True
    spec = parse_spec(raw)
    manifests = render_tenant(
        name,
        spec,
        catalogue=catalogue(),
        settings=OperatorSettings(),
        capacity=capacity(),
        lifecycle=lifecycle,
        inspection_ca_certificate=ca_certificate(),
    )

    def kind(k: str) -> list[dict[str, Any]]:
        return [o for o in manifests.objects if o["kind"] == k]

    namespace = kind("Namespace")[0]
    hard = quota_hard(manifests.sizing.quota)
    status: dict[str, Any] = {
        "phase": "Ready",
        "sizing": {
            "proxyReplicas": manifests.sizing.proxy.replicas,
            "antivirusReplicas": manifests.sizing.antivirus.replicas
            if manifests.sizing.antivirus
            else 0,
            "quotaCpu": hard["limits.cpu"],
            "quotaMemory": hard["limits.memory"],
        },
    }
    if lifecycle is Lifecycle.CANCELLED:
        status["phase"] = "Cancelled"
        status["cancellation"] = {
            "cancelledAt": "2026-11-30T12:00:00Z",
            "purgeAt": "2027-02-28T12:00:00Z",
            "legalHold": False,
        }
    ca = [o for o in kind("ConfigMap") if o["metadata"]["name"] == "https-inspection-ca-cert"]
    return Facts(
        tenant=name,
        namespace=tenant_namespace(name),
        tenant_reading=Reading(200, {"spec": raw, "status": status}),
        spec=raw,
        status=status,
        contract=contract_view(spec),
        namespace_object=Reading(200, copy.deepcopy(namespace)),
        policies=listing(kind("NetworkPolicy")),
        quotas=listing(
            [{**q, "status": {"hard": hard, "used": {}}} for q in kind("ResourceQuota")]
        ),
        deployments=listing(kind("Deployment")),
        claims=listing(kind("PersistentVolumeClaim")),
        ca_certificate=Reading(200, ca[0]) if ca else Reading(404),
        notices=Reading(200, {"data": notices_data()}),
        receipts=listing([]),
        access=answers(raw),
        other_namespaces=(OTHER,),
    )


def edit(reading: Reading, name: str, change: Any) -> Reading:
    """`reading` (a list) with item `name` passed through `change` (None from it: removed)."""
    items = []
    for item in copy.deepcopy(reading.items()):
        if item["metadata"]["name"] == name:
            item = change(item)
        if item is not None:
            items.append(item)
    return Reading(200, {"items": items})


__all__ = ["NOW", "OTHER", "Facts", "edit", "facts_for", "listing", "notices_data", "replace"]
