"""The NetworkPolicies analysed as policies (a cluster that does not enforce them proves
nothing): two tenants side by side, every workload, every port the service uses."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given, settings

from render_strategies import specs, tenant_names
from render_support import (
    Endpoint,
    connection_allowed,
    find,
    minimal_spec,
    objects_of,
    render,
    render_example,
)
from swg_operator.api import OperatorSettings, parse_spec
from swg_operator.render import Lifecycle, TenantManifests

PORTS = (22, 53, 80, 443, 1344, 3128, 5140, 8080)
INTERNET_V4 = "203.0.113.200"
INTERNET_V6 = "2001:db8:ffff::1"
FORBIDDEN = (
    "10.0.0.5",  # node network
    "10.96.0.1",  # Service network
    "10.244.9.9",  # pod network
    "172.16.0.1",
    "192.168.1.1",
    "100.64.0.1",
    "169.254.169.254",  # cloud metadata
    "127.0.0.1",
    "fd00:ec2::254",
    "fe80::1",
    "::1",
)
DNS = Endpoint(
    "10.96.100.10",
    "kube-system",
    {"k8s-app": "kube-dns"},
    {"kubernetes.io/metadata.name": "kube-system"},
)
OPERATOR_POD = Endpoint(
    "10.244.200.5",
    "swg-system",
    {"app.kubernetes.io/name": "swg-operator"},
    {"kubernetes.io/metadata.name": "swg-system"},
)


def workload_pods(manifests: TenantManifests, *, subnet: int) -> dict[str, Endpoint]:
    namespace = find(manifests, "Namespace", manifests.namespace)
    ns_labels = {
        "kubernetes.io/metadata.name": manifests.namespace,
        **namespace["metadata"]["labels"],
    }
    pods = {}
    for host, deployment in enumerate(objects_of(manifests, "Deployment"), start=10):
        pods[deployment["metadata"]["name"]] = Endpoint(
            f"10.244.{subnet}.{host}",
            manifests.namespace,
            deployment["spec"]["template"]["metadata"]["labels"],
            ns_labels,
        )
    return pods


def policies_of(*tenants: TenantManifests) -> list[dict[str, Any]]:
    return [p for t in tenants for p in objects_of(t, "NetworkPolicy")]


def allowed(policies: list[dict[str, Any]], src: Endpoint, dst: Endpoint, port: int) -> bool:
    return any(
        connection_allowed(policies, src, dst, port=port, protocol=protocol)
        for protocol in ("TCP", "UDP")
    )


def assert_isolated(a: TenantManifests, b: TenantManifests) -> None:
    policies = policies_of(a, b)
    pods_a = workload_pods(a, subnet=1)
    pods_b = workload_pods(b, subnet=2)
    for src, dst in itertools.chain(
        itertools.product(pods_a.values(), pods_b.values()),
        itertools.product(pods_b.values(), pods_a.values()),
    ):
        for port in PORTS:
            assert not allowed(policies, src, dst, port), (src, dst, port)


@pytest.mark.parametrize("lifecycle", list(Lifecycle))
def test_two_tenants_have_no_path_between_them(lifecycle: Lifecycle) -> None:
    full = render_example("full", lifecycle=lifecycle)
    minimal = render_example("minimal")
    assert_isolated(full, minimal)


def test_even_tenants_open_to_any_client_cannot_reach_each_other() -> None:
    spec = minimal_spec(clients={"allowedCIDRs": ["0.0.0.0/0", "::/0"], "allowAnyClient": True})
    assert_isolated(render("open-a", spec), render("open-b", spec))


@settings(max_examples=25, deadline=None)
@given(name_a=tenant_names, spec_a=specs(), name_b=tenant_names, spec_b=specs())
def test_any_two_tenants_have_no_path_between_them(
    name_a: str, spec_a: dict[str, Any], name_b: str, spec_b: dict[str, Any]
) -> None:
    if name_a == name_b:
        name_b = f"{name_a[:57]}-b"
    assert_isolated(
        render(name_a, parse_spec(spec_a), lifecycle=Lifecycle.ACTIVE),
        render(name_b, parse_spec(spec_b), lifecycle=Lifecycle.ACTIVE),
    )


def test_clients_reach_the_proxy_port_only() -> None:
    manifests = render_example("full")
    policies = policies_of(manifests)
    pods = workload_pods(manifests, subnet=1)
    inside, outside = Endpoint("198.51.100.20"), Endpoint("192.0.2.20")
    inside_v6 = Endpoint("2001:db8:100::20")
    assert allowed(policies, inside, pods["proxy"], 3128)
    assert allowed(policies, inside_v6, pods["proxy"], 3128)
    assert not allowed(policies, outside, pods["proxy"], 3128)
    assert not allowed(policies, inside, pods["proxy"], 22)
    for name in ("antivirus", "logstore"):
        for port in PORTS:
            assert not allowed(policies, inside, pods[name], port)


def test_no_pod_of_the_cluster_is_a_client() -> None:
    spec = minimal_spec(clients={"allowedCIDRs": ["0.0.0.0/0"], "allowAnyClient": True})
    manifests = render("open", spec)
    pods = workload_pods(manifests, subnet=1)
    policies = policies_of(manifests)
    assert allowed(policies, Endpoint(INTERNET_V4), pods["proxy"], 3128)
    assert not allowed(policies, OPERATOR_POD, pods["proxy"], 3128)


def test_proxy_reaches_the_internet_and_nothing_of_the_cluster() -> None:
    manifests = render_example("full")
    policies = policies_of(manifests)
    proxy = workload_pods(manifests, subnet=1)["proxy"]
    for destination in (INTERNET_V4, INTERNET_V6):
        assert connection_allowed(policies, proxy, Endpoint(destination), port=443)
        assert connection_allowed(policies, proxy, Endpoint(destination), port=80)
        # DNS goes to the cluster's resolver, never straight out.
        assert not connection_allowed(
            policies, proxy, Endpoint(destination), port=53, protocol="UDP"
        )
    for destination in FORBIDDEN:
        for port in PORTS:
            assert not allowed(policies, proxy, Endpoint(destination), port), destination
    for port in PORTS:
        assert not allowed(policies, proxy, OPERATOR_POD, port)


def test_every_pod_resolves_names_through_the_cluster_dns_only() -> None:
    manifests = render_example("full")
    policies = policies_of(manifests)
    pods = workload_pods(manifests, subnet=1)
    assert pods
    for pod in pods.values():
        for protocol in ("UDP", "TCP"):
            assert connection_allowed(policies, pod, DNS, port=53, protocol=protocol)
        assert not connection_allowed(policies, pod, DNS, port=443)


def test_service_paths_inside_the_tenant() -> None:
    manifests = render_example("full")
    policies = policies_of(manifests)
    pods = workload_pods(manifests, subnet=1)
    proxy, antivirus, logstore = pods["proxy"], pods["antivirus"], pods["logstore"]
    assert allowed(policies, proxy, antivirus, 1344)
    assert not allowed(policies, proxy, antivirus, 22)
    for writer in (proxy, antivirus):
        assert allowed(policies, writer, logstore, 5140)  # the shipper's ingest port
        assert not allowed(policies, writer, logstore, 8080)  # downloads: the API server only
    assert not allowed(policies, logstore, antivirus, 1344)
    # The anti-virus pods reach the signature mirror (by default the public one) through the
    # tenant's proxy, on the proxy port only, and no address outside the tenant.
    assert allowed(policies, antivirus, proxy, 3128)
    assert not allowed(policies, antivirus, proxy, 443)
    assert not allowed(policies, logstore, proxy, 3128)
    for destination in (INTERNET_V4, INTERNET_V6, *FORBIDDEN):
        for port in PORTS:
            assert not allowed(policies, logstore, Endpoint(destination), port)
            assert not allowed(policies, antivirus, Endpoint(destination), port)


def test_the_api_server_reaches_the_log_export_port_when_declared() -> None:
    spec = minimal_spec()
    api_server = Endpoint("10.0.0.2")
    closed = render("export", spec)
    logstore = workload_pods(closed, subnet=1)["logstore"]
    assert not allowed(policies_of(closed), api_server, logstore, 8080)

    opened = render("export", spec, settings=OperatorSettings(api_server_cidrs=("10.0.0.0/24",)))
    logstore = workload_pods(opened, subnet=1)["logstore"]
    assert allowed(policies_of(opened), api_server, logstore, 8080)
    assert not allowed(policies_of(opened), api_server, logstore, 5140)


@pytest.mark.parametrize("lifecycle", [Lifecycle.SUSPENDED, Lifecycle.CANCELLED])
def test_a_stopped_tenant_has_no_client_or_internet_path(lifecycle: Lifecycle) -> None:
    manifests = render_example("full", lifecycle=lifecycle)
    policies = policies_of(manifests)
    pods = workload_pods(manifests, subnet=1)
    client = Endpoint("198.51.100.20")
    assert pods
    for pod in pods.values():
        for port in PORTS:
            assert not allowed(policies, client, pod, port)
            for destination in (INTERNET_V4, INTERNET_V6):
                assert not allowed(policies, pod, Endpoint(destination), port)


def test_cluster_networks_covering_a_whole_family_close_it() -> None:
    settings_v4_closed = OperatorSettings(cluster_cidrs=("0.0.0.0/0", "fd00::/8"))
    manifests = render("v6-only", minimal_spec(), settings=settings_v4_closed)
    egress = find(manifests, "NetworkPolicy", "proxy-egress")["spec"]["egress"][-1]["to"]
    assert [peer["ipBlock"]["cidr"] for peer in egress] == ["::/0"]
