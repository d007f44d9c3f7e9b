"""Shared helpers of the renderer tests: the example tenants, the sample catalogue, quick access
to rendered objects, and a small NetworkPolicy evaluator."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from swg_operator.api import OperatorSettings, SecureWebGatewaySpec, parse_spec
from swg_operator.capacity import Capacity
from swg_operator.catalogue import Catalogue
from swg_operator.catalogue_io import load_blacklist_directory
from swg_operator.render import Lifecycle, TenantManifests, render_tenant
from swg_operator.render.context import Tenant
from swg_operator.render.dataplane import flat_files, render_dataplane_files
from swg_operator.sizing_io import load_capacity

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples" / "tenants"
SAMPLE_CATALOGUE = REPO / "examples" / "catalogue"
EXAMPLE_NAMES = ("minimal", "full")


def dataplane_files(spec: SecureWebGatewaySpec, **arguments: Any) -> dict[str, str]:
    """Every data-plane file of `spec` by name (`render_dataplane_files` keys them by
    component)."""
    return flat_files(render_dataplane_files(spec, **arguments))


@cache
def catalogue() -> Catalogue:
    return load_blacklist_directory(SAMPLE_CATALOGUE)


@cache
def capacity() -> Capacity:
    return load_capacity()


def example_document(example: str) -> dict[str, Any]:
    document = yaml.safe_load((EXAMPLES / f"{example}.yaml").read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def example_spec(example: str) -> tuple[str, dict[str, Any]]:
    """(tenant name, raw spec) of an example tenant."""
    document = example_document(example)
    return document["metadata"]["name"], document["spec"]


def render(
    name: str,
    spec: SecureWebGatewaySpec | Mapping[str, Any],
    *,
    lifecycle: Lifecycle = Lifecycle.ACTIVE,
    settings: OperatorSettings | None = None,
    platform_signatures: Mapping[str, str] | None = None,
) -> TenantManifests:
    model = spec if isinstance(spec, SecureWebGatewaySpec) else parse_spec(spec)
    return render_tenant(
        name,
        model,
        catalogue=catalogue(),
        settings=settings or OperatorSettings(),
        capacity=capacity(),
        lifecycle=lifecycle,
        platform_signatures=platform_signatures,
    )


def render_example(example: str, *, lifecycle: Lifecycle = Lifecycle.ACTIVE) -> TenantManifests:
    name, spec = example_spec(example)
    return render(name, spec, lifecycle=lifecycle)


def objects_of(manifests: TenantManifests, kind: str) -> list[dict[str, Any]]:
    return [o for o in manifests.objects if o["kind"] == kind]


def find(manifests: TenantManifests, kind: str, name: str) -> dict[str, Any]:
    for obj in manifests.objects:
        if obj["kind"] == kind and obj["metadata"]["name"] == name:
            return obj
    raise KeyError(f"{kind}/{name} not rendered")


def has(manifests: TenantManifests, kind: str, name: str) -> bool:
    return any(o["kind"] == kind and o["metadata"]["name"] == name for o in manifests.objects)


def pod_templates(manifests: TenantManifests) -> list[dict[str, Any]]:
    return [d["spec"]["template"] for d in objects_of(manifests, "Deployment")]


def minimal_spec(**overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "serviceCode": "SWG-0000001",
        "sizing": {"endpoints": 50, "requestsPerSecond": 20},
        "clients": {"allowedCIDRs": ["192.0.2.0/24"]},
    }
    spec.update(overrides)
    return spec


def minimal_tenant() -> Tenant:
    """The rendering context of the active `minimal` example, for a workload's parts alone."""
    manifests = render_example("minimal")
    return Tenant(
        name="minimal",
        spec=parse_spec(minimal_spec()),
        settings=OperatorSettings(),
        sizing=manifests.sizing,
        lifecycle=Lifecycle.ACTIVE,
        namespace="swg-minimal",
    )


# --- NetworkPolicy evaluation ------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """A pod (namespace and labels) or an address outside any pod (namespace None)."""

    ip: str
    namespace: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    namespace_labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_pod(self) -> bool:
        return self.namespace is not None


def _selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    if selector is None:
        return True
    match = selector.get("matchLabels") or {}
    if any(labels.get(k) != v for k, v in match.items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values")
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and labels.get(key) in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def _in_block(ip: str, block: Mapping[str, Any]) -> bool:
    address = ipaddress.ip_address(ip)
    network = ipaddress.ip_network(block["cidr"])
    if address.version != network.version or address not in network:
        return False
    return not any(
        address in ipaddress.ip_network(e)
        for e in block.get("except", ())
        if ipaddress.ip_network(e).version == address.version
    )


def _peer_matches(peer: Mapping[str, Any], other: Endpoint, policy_namespace: str) -> bool:
    """Conservative: an ipBlock is taken to match pods too (implementations differ), so an
    isolation proof holds whichever way a CNI reads it."""
    if "ipBlock" in peer:
        return _in_block(other.ip, peer["ipBlock"])
    if not other.is_pod:
        return False
    if "namespaceSelector" in peer:
        if not _selects(peer["namespaceSelector"], other.namespace_labels):
            return False
    elif other.namespace != policy_namespace:
        return False
    return _selects(peer.get("podSelector"), other.labels)


def _port_matches(ports: Sequence[Mapping[str, Any]] | None, port: int, protocol: str) -> bool:
    if not ports:
        return True
    for entry in ports:
        if entry.get("protocol", "TCP") != protocol:
            continue
        if "port" not in entry or entry["port"] == port:
            return True
        if (
            isinstance(entry["port"], int)
            and entry.get("endPort", entry["port"]) >= port >= entry["port"]
        ):
            return True
    return False


def _direction_allows(
    policies: Iterable[Mapping[str, Any]],
    subject: Endpoint,
    other: Endpoint,
    *,
    direction: str,
    port: int,
    protocol: str,
) -> bool:
    key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    selecting = [
        p
        for p in policies
        if p["metadata"]["namespace"] == subject.namespace
        and _selects(p["spec"]["podSelector"], subject.labels)
        and direction in p["spec"].get("policyTypes", ["Ingress"])
    ]
    if not selecting:
        return True
    for policy in selecting:
        for rule in policy["spec"].get(key) or []:
            peers = rule.get(peers_key)
            peer_ok = not peers or any(
                _peer_matches(peer, other, policy["metadata"]["namespace"]) for peer in peers
            )
            if peer_ok and _port_matches(rule.get("ports"), port, protocol):
                return True
    return False


def connection_allowed(
    policies: Sequence[Mapping[str, Any]],
    src: Endpoint,
    dst: Endpoint,
    *,
    port: int,
    protocol: str = "TCP",
) -> bool:
    """Whether NetworkPolicies let `src` open a connection to `dst` on `port`."""
    if src.is_pod and not _direction_allows(
        policies, src, dst, direction="Egress", port=port, protocol=protocol
    ):
        return False
    return not dst.is_pod or _direction_allows(
        policies, dst, src, direction="Ingress", port=port, protocol=protocol
    )
