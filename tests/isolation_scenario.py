"""The scenario of the tenant isolation tests (test_isolation.py): the cluster's networks,
the tenants' cases, the objects rendered for them, the edges the product promises, and the
analysers run once on it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from devtools.security.analysis import (
    nca_edges,
    netpolicy_edges,
)
from devtools.security.connectivity import (
    DNS,
    EVERY_IPV4,
    EVERY_IPV6,
    Connectivity,
    Conns,
    Edge,
    ExpectedConnectivity,
    IpSet,
    Workload,
)
from devtools.security.manifests import (
    OPERATOR_NAMESPACE,
    chart_objects,
    example_spec,
    namespace,
    render,
    workload,
)

from swg_operator.api import OperatorSettings, parse_spec
from swg_operator.render import Lifecycle
from swg_operator.render.access_tls import client_proxy_ports

# The cluster as the platform team declares it (Helm values dataplane.clusterCIDRs and the API

# server's endpoint address): written out here so the expectation does not follow the defaults.
CLUSTER_CIDRS = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fd00::/8")
API_SERVER = "172.18.0.2/32"  # inside the cluster's networks, as on kind
SETTINGS = OperatorSettings(cluster_cidrs=CLUSTER_CIDRS, api_server_cidrs=(API_SERVER,))
PROXY_PORT = SETTINGS.proxy_port
ICAP_PORT = 1344
LOGSTORE_INGEST_PORTS = (5140,)  # the log shippers' ingest (HTTP POST /v1/ingest)
# freshclam reaches the public mirror (default settings) through the tenant's proxy port.
LOGSTORE_EXPORT_PORT = 8080
OPERATOR_HTTP_PORT = 8080
API_SERVER_PORTS = (443, 6443)

CLUSTER = IpSet.cidrs(*CLUSTER_CIDRS)
METADATA = ("169.254.169.254", "fd00:ec2::254")
# Never reachable from a proxy, whatever the cluster: "this network" and the unspecified IPv6
# address (a connection to 0.0.0.0 or :: reaches the host itself), loopback, link-local (cloud
# metadata) and IPv6 metadata.
NEVER = IpSet.cidrs(
    "0.0.0.0/8",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "::/128",
    "::1/128",
    "fe80::/10",
    "fd00:ec2::254/128",
)
INTERNET = (EVERY_IPV4 | EVERY_IPV6) - CLUSTER - NEVER

COREDNS = Workload("kube-system", "coredns")
PROMETHEUS = Workload("monitoring", "prometheus")
BYSTANDER = Workload("default", "billing")
OPERATOR = Workload(OPERATOR_NAMESPACE, "swg-swg-operator")
HELM_TEST_POD = Workload(OPERATOR_NAMESPACE, "swg-swg-operator-test-health")
CHART_VALUES = {"networkPolicy.apiServer.cidrs[0]": API_SERVER}


@dataclass(frozen=True)
class Case:
    name: str
    spec: dict[str, Any]
    lifecycle: Lifecycle = Lifecycle.ACTIVE

    @property
    def namespace(self) -> str:
        return f"swg-{self.name}"

    def workload(self, component: str) -> Workload:
        return Workload(self.namespace, component)

    @property
    def client_ports(self) -> Conns:
        """The proxy ports the clients may reach: the plain one and the TLS listener's."""
        return Conns.tcp(*client_proxy_ports(parse_spec(self.spec), SETTINGS))

    @property
    def antivirus(self) -> bool:
        return bool(self.spec.get("antivirus", {}).get("enabled", True))

    @property
    def serving(self) -> bool:
        return self.lifecycle is Lifecycle.ACTIVE and not self.spec.get("suspended", False)

    @property
    def clients(self) -> IpSet:
        return IpSet.cidrs(*self.spec["clients"]["allowedCIDRs"]) - CLUSTER

    @property
    def workloads(self) -> list[Workload]:
        components = ["proxy", "antivirus", "logstore"] if self.antivirus else ["proxy", "logstore"]
        return [self.workload(c) for c in components]


def _spec(cidrs: Sequence[str], **extra: Any) -> dict[str, Any]:
    return {
        "serviceCode": "SWG-0009000",
        "sizing": {"endpoints": 120, "requestsPerSecond": 60},
        "clients": {"allowedCIDRs": list(cidrs)},
        **extra,
    }


CASES = (
    Case("alpha", example_spec("minimal")),
    # IPv4 and IPv6 clients, filter policies, region placement, sandbox, HTTPS inspection.
    Case("beta", example_spec("full")),
    Case(
        "gamma",
        _spec(
            ["198.51.100.0/25", "203.0.113.0/24", "2001:db8:200::/40"],
            antivirus={"enabled": False},
            placement={"region": "region-b"},
            urlFiltering={
                "policies": [{"name": "lab", "sourceCIDRs": ["203.0.113.0/26"]}],
            },
        ),
    ),
    # A catch-all client list: the cluster's own networks still never count as clients.
    Case(
        "delta",
        _spec(["0.0.0.0/0", "::/0"], clients={"allowedCIDRs": ["0.0.0.0/0", "::/0"]}),
    ),
    Case("epsilon", _spec(["192.0.2.64/26"], suspended=True)),
    Case("zeta", _spec(["192.0.2.128/26"]), lifecycle=Lifecycle.CANCELLED),
)
# delta's `clients` override carries the consent flag.
CASES[3].spec["clients"]["allowAnyClient"] = True


def cluster_workloads() -> list[dict[str, Any]]:
    """What else runs in the cluster: DNS, monitoring, an application of the platform team."""
    return [
        namespace("kube-system"),
        namespace("monitoring"),
        namespace("default"),
        namespace(OPERATOR_NAMESPACE),
        workload(COREDNS.namespace, COREDNS.name, {"k8s-app": "kube-dns"}, [53]),
        workload(PROMETHEUS.namespace, PROMETHEUS.name, {"app": "prometheus"}, [9090]),
        workload(BYSTANDER.namespace, BYSTANDER.name, {"app": "billing"}, [8080, 443]),
    ]


def scenario_objects(
    cases: Sequence[Case] = CASES, *, chart_values: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    objects: list[dict[str, Any]] = []
    for case in cases:
        manifests = render(case.name, case.spec, settings=SETTINGS, lifecycle=case.lifecycle)
        objects += manifests.objects
    objects += chart_objects(CHART_VALUES if chart_values is None else chart_values)
    objects += cluster_workloads()
    return objects


def subjects(cases: Sequence[Case] = CASES) -> list[Workload]:
    """The workloads whose every connection is compared: tenants' and the operator."""
    return [w for case in cases for w in case.workloads] + [OPERATOR]


def expected_tenant(e: ExpectedConnectivity, case: Case) -> None:
    proxy, antivirus, logstore = (case.workload(c) for c in ("proxy", "antivirus", "logstore"))
    for w in case.workloads:
        e.pod(w, COREDNS, DNS)
    if case.antivirus:
        e.pod(antivirus, logstore, Conns.tcp(*LOGSTORE_INGEST_PORTS))
    e.addresses(logstore, "ingress", Conns.tcp(LOGSTORE_EXPORT_PORT), IpSet.cidrs(API_SERVER))
    if not case.serving:
        return
    e.addresses(proxy, "ingress", case.client_ports, case.clients)
    e.addresses(proxy, "egress", Conns.all_ports("TCP"), INTERNET)
    e.pod(proxy, logstore, Conns.tcp(*LOGSTORE_INGEST_PORTS))
    if case.antivirus:
        e.pod(proxy, antivirus, Conns.tcp(ICAP_PORT))
        e.pod(antivirus, proxy, Conns.tcp(PROXY_PORT))


def expected_operator(e: ExpectedConnectivity) -> None:
    e.addresses(OPERATOR, "egress", Conns.tcp(*API_SERVER_PORTS), IpSet.cidrs(API_SERVER))
    e.pod(OPERATOR, COREDNS, DNS)
    e.pod(PROMETHEUS, OPERATOR, Conns.tcp(OPERATOR_HTTP_PORT))
    e.pod(HELM_TEST_POD, OPERATOR, Conns.tcp(OPERATOR_HTTP_PORT))


def expected(cases: Sequence[Case] = CASES) -> Connectivity:
    e = ExpectedConnectivity()
    for case in cases:
        expected_tenant(e, case)
    expected_operator(e)
    return e.build()


# --- running the analysers once ----------------------------------------------------------------


@dataclass(frozen=True)
class Analysis:
    analyser: str
    family: int | None  # the one address family it is compared on, None for both
    edges: tuple[Edge, ...]
    found: Connectivity


def analyse(objects: Sequence[dict[str, Any]], analyser: str, keep: Sequence[Workload]) -> Analysis:
    if analyser == "netpolicy":
        edges, _ = netpolicy_edges(objects)
        found = Connectivity.of_edges(edges, keep=keep)
        return Analysis(analyser, 4, tuple(edges), found)
    edges = nca_edges(objects)
    return Analysis(analyser, None, tuple(edges), Connectivity.of_edges(edges, keep=keep))


@cache
def scenario_analysis(analyser: str) -> Analysis:
    return analyse(scenario_objects(), analyser, subjects())


def compare(analysis: Analysis, wanted: Connectivity) -> list[str]:
    found = analysis.found
    if analysis.family is not None:
        found, wanted = found.family(analysis.family), wanted.family(analysis.family)
    return found.differences(wanted)


ANALYSERS = ("netpolicy", "nca")
