"""Tenant isolation, as two independent NetworkPolicy analysers compute it.

Several tenants (different client networks, filter policies, placement, anti-virus off, a
catch-all client list, suspended and cancelled ones) are rendered, together with the chart's
`helm template` output and the cluster workloads around them (DNS, Prometheus, an unrelated
application), and given to np-guard's netpol-analyzer and to network-config-analyzer. Each
analyser's list of allowed connections is parsed into edges and compared with the edge set this
file writes down from the product's promises, not from the renderer's code:

* no connection between two tenants' namespaces, nor between a tenant and anything else in the
  cluster but DNS;
* clients (addresses in allowedCIDRs, cluster networks excepted) reach the proxy port only;
  any other address reaches nothing;
* the proxy reaches the anti-virus ICAP port, the log store, DNS and the internet (every
  address but the cluster's networks, loopback, link-local and cloud metadata);
* the anti-virus pods, which parse hostile files, reach DNS, the log store and their own
  tenant's proxy port (freshclam's way to the public signature mirror): no address at all;
* the log store admits the API server's networks on its export port (log download);
* the operator reaches the API server and DNS only and admits only the metrics scrape.

Any extra edge fails, and so does a missing one. netpol-analyzer reads IPv4 only
(`devtools.security.analysis`), so it is compared on IPv4; network-config-analyzer on both families.
The tests at the end feed deliberately wrong policies and check that the comparison fails.
"""

from __future__ import annotations

import copy
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from devtools.security.analysis import (
    nca_edges,
    netpolicy_edges,
    without_ipv6_ip_blocks,
    write_analysed,
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
    parse_edges,
)
from devtools.security.manifests import (
    OPERATOR_NAMESPACE,
    chart_objects,
    example_spec,
    namespace,
    render,
    workload,
)
from devtools.security.tools import analyzer

from swg_operator.api import OperatorSettings
from swg_operator.render import Lifecycle

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
    e.addresses(proxy, "ingress", Conns.tcp(PROXY_PORT), case.clients)
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


@pytest.fixture(params=ANALYSERS)
def analysis(request: pytest.FixtureRequest) -> Analysis:
    return scenario_analysis(request.param)


# --- the scenario ------------------------------------------------------------------------------


def test_connectivity_is_exactly_the_expected_edge_set(analysis: Analysis) -> None:
    differences = compare(analysis, expected())
    assert not differences, f"{analysis.analyser}:\n" + "\n".join(differences)


def test_no_connection_between_tenants_or_into_the_rest_of_the_cluster(
    analysis: Analysis,
) -> None:
    tenant_namespaces = {case.namespace for case in CASES}
    crossing = [
        f"{src} => {dst} : {conns}"
        for src, dst, conns in analysis.found.pods
        if src.namespace != dst.namespace
        and (src.namespace in tenant_namespaces or dst.namespace in tenant_namespaces)
        and dst != COREDNS
    ]
    assert not crossing, "\n".join(crossing)


def test_clients_reach_the_proxy_port_only_and_only_from_allowed_cidrs(
    analysis: Analysis,
) -> None:
    for case in CASES:
        for w in case.workloads:
            for (where, direction, conns), addresses in analysis.found.addresses.items():
                if where != w or direction != "ingress":
                    continue
                if w.name == "proxy":
                    assert conns == Conns.tcp(PROXY_PORT), f"{w}: {conns}"
                    assert not (addresses - case.clients), f"{w} from {addresses - case.clients}"
                else:
                    assert w.name == "logstore", f"{w} admits {addresses}"
                    assert addresses == IpSet.cidrs(API_SERVER).family(4)


def test_no_subject_reaches_cluster_networks_loopback_or_metadata(analysis: Analysis) -> None:
    forbidden = CLUSTER | NEVER
    for w in subjects():
        reachable = analysis.found.reachable_from(w)
        if w == OPERATOR:
            reachable -= IpSet.cidrs(API_SERVER)  # its only destination
        assert not (reachable & forbidden), f"{w} reaches {reachable & forbidden}"
        for address in METADATA:
            if analysis.family in (None, 4 if "." in address else 6):
                assert address not in reachable, f"{w} reaches {address}"


def test_the_antivirus_pods_reach_no_address(analysis: Analysis) -> None:
    """The pod that parses hostile files has no internet egress of its own, whatever the
    tenant (served or not, any client list): freshclam goes through the tenant's proxy."""
    for case in CASES:
        if case.antivirus:
            reachable = analysis.found.reachable_from(case.workload("antivirus"))
            assert not reachable, f"{case.name}: the anti-virus pods reach {reachable}"


def test_proxy_reaches_the_whole_internet_over_tcp(analysis: Analysis) -> None:
    """The complement: the exclusions do not take out more than they should."""
    internet = INTERNET if analysis.family is None else INTERNET.family(analysis.family)
    for case in CASES:
        reachable = analysis.found.reachable_from(case.workload("proxy"))
        if case.serving:
            assert not (internet - reachable), f"{case.name}: {internet - reachable}"
            for address in ("1.1.1.1", "8.8.8.8", "203.0.113.7", "2001:4860:4860::8888"):
                if analysis.family in (None, 4 if "." in address else 6):
                    assert address in reachable, f"{case.name}: {address}"
        else:
            assert not reachable, f"{case.name} is not serving but reaches {reachable}"


def test_proxy_never_reaches_the_unspecified_ipv6_address() -> None:
    found = scenario_analysis("nca").found
    for case in CASES:
        assert "::" not in found.reachable_from(case.workload("proxy")), case.name


def test_netpolicy_is_given_every_ipv6_peer_of_the_policies_except_nothing_else() -> None:
    _, removed = without_ipv6_ip_blocks(scenario_objects())
    cidrs = sorted({line.rsplit(": ", 1)[1] for line in removed})
    assert cidrs == sorted({"::/0", "2001:db8:100::/48", "2001:db8:200::/40"})


def test_operator_chart_default_falls_back_to_the_api_ports_on_any_address() -> None:
    """`helm template` cannot look the API server up: the operator may then open the API ports
    anywhere (documented in values.yaml), and still nothing of a tenant."""
    objects = scenario_objects(CASES[:1], chart_values={})
    found = analyse(objects, "nca", [OPERATOR]).found
    api_ports = Conns.tcp(*API_SERVER_PORTS)
    e = ExpectedConnectivity()
    e.addresses(OPERATOR, "egress", api_ports, EVERY_IPV4 | EVERY_IPV6)
    e.pod(OPERATOR, COREDNS, DNS | api_ports)
    for other in (PROMETHEUS, BYSTANDER, HELM_TEST_POD):
        e.pod(OPERATOR, other, api_ports)
    e.pod(PROMETHEUS, OPERATOR, Conns.tcp(OPERATOR_HTTP_PORT))
    e.pod(HELM_TEST_POD, OPERATOR, Conns.tcp(OPERATOR_HTTP_PORT))
    differences = found.differences(e.build())
    assert not differences, "\n".join(differences)


# --- the comparison can fail -------------------------------------------------------------------


def _mutated(mutate: Callable[[dict[str, Any]], None], case: Case = CASES[0]) -> list[Any]:
    """The first case's objects with `mutate` applied to each of its NetworkPolicies."""
    objects = copy.deepcopy(scenario_objects((case,)))
    for obj in objects:
        if obj.get("kind") == "NetworkPolicy" and obj["metadata"]["namespace"] == case.namespace:
            mutate(obj)
    return objects


def _egress_without_cluster_exceptions(policy: dict[str, Any]) -> None:
    if policy["metadata"]["name"] == "proxy-egress":
        for rule in policy["spec"]["egress"]:
            for peer in rule.get("to", []):
                peer.get("ipBlock", {}).pop("except", None)


def _logstore_open_to_every_namespace(policy: dict[str, Any]) -> None:
    if policy["metadata"]["name"] == "logstore":
        policy["spec"]["ingress"][0]["from"].append({"namespaceSelector": {}})


def _clients_on_every_port(policy: dict[str, Any]) -> None:
    if policy["metadata"]["name"] == "proxy-ingress-clients":
        del policy["spec"]["ingress"][0]["ports"]


def _antivirus_to_the_internet(policy: dict[str, Any]) -> None:
    if policy["metadata"]["name"] == "antivirus":
        to = [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}}]
        policy["spec"]["egress"].append({"to": to, "ports": [{"protocol": "TCP", "port": 443}]})


def _dns_rule_to_anywhere(policy: dict[str, Any]) -> None:
    if policy["metadata"]["name"] == "allow-dns":
        del policy["spec"]["egress"][0]["to"]


# Each wrong policy, and words that must all appear in one `extra:` line of the comparison.
WRONG_POLICIES = {
    "egress-into-cluster-and-metadata": (
        _egress_without_cluster_exceptions,
        ("swg-alpha/proxy =>", "10.0.0.0/8", "169.254.0.0/16"),
    ),
    "log-store-open-to-other-namespaces": (
        _logstore_open_to_every_namespace,
        ("default/billing => swg-alpha/logstore : TCP 5140",),
    ),
    "clients-on-every-port": (
        _clients_on_every_port,
        ("swg-alpha/proxy <= 192.0.2.0/24 : SCTP 1-65535; TCP 1-65535; UDP 1-65535",),
    ),
    "antivirus-to-the-internet": (
        _antivirus_to_the_internet,
        ("swg-alpha/antivirus =>", "128.0.0.0/1", "TCP 443"),
    ),
    "dns-rule-to-anywhere": (
        _dns_rule_to_anywhere,
        ("swg-alpha/logstore => default/billing : TCP 53; UDP 53",),
    ),
}


@pytest.mark.parametrize("analyser", ANALYSERS)
@pytest.mark.parametrize("wrong", sorted(WRONG_POLICIES))
def test_a_wrong_policy_fails_the_comparison(analyser: str, wrong: str) -> None:
    mutate, symptom = WRONG_POLICIES[wrong]
    cases = CASES[:1]
    found = analyse(_mutated(mutate), analyser, subjects(cases))
    differences = compare(found, expected(cases))
    assert any(
        line.startswith("extra: ") and all(word in line for word in symptom) for line in differences
    ), "\n".join(differences)


@pytest.mark.parametrize("analyser", ANALYSERS)
def test_the_unmutated_single_tenant_passes_the_same_comparison(analyser: str) -> None:
    cases = CASES[:1]
    found = analyse(_mutated(lambda _: None), analyser, subjects(cases))
    assert not compare(found, expected(cases))


def test_netpolicy_misreads_ipv6_blocks_which_is_why_it_gets_ipv4_only(tmp_path: Path) -> None:
    """Canary: given an IPv6 ipBlock as is, netpol-analyzer v1.4.4 reports an IPv4 range (the
    block's first 32 bits: 2001:db8:100::/48 becomes 32.1.13.184). When a new version stops
    doing that, the IPv6 stripping in `devtools.security.analysis` can go."""
    write_analysed(scenario_objects(CASES[1:2]), tmp_path)  # beta: 2001:db8:100::/48 clients
    result = subprocess.run(
        [str(analyzer("netpolicy").path), "list", "--dirpath", str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    proxy = Workload("swg-beta", "proxy")
    edges = parse_edges(result.stdout, dialect="netpolicy")
    clients = Connectivity.of_edges(edges, keep=[proxy]).reaching(proxy)
    assert "32.1.13.184" in clients, "netpolicy reads IPv6 blocks now: revisit the stripping"
