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
test_isolation_mutations.py feeds deliberately wrong policies and checks that the comparison fails;
the scenario and the analysers' runs are in isolation_scenario.py.
"""

from __future__ import annotations

import pytest
from devtools.security.analysis import (
    without_ipv6_ip_blocks,
)
from devtools.security.connectivity import (
    DNS,
    EVERY_IPV4,
    EVERY_IPV6,
    Conns,
    ExpectedConnectivity,
    IpSet,
)

from isolation_scenario import (
    ANALYSERS,
    API_SERVER,
    API_SERVER_PORTS,
    BYSTANDER,
    CASES,
    CLUSTER,
    COREDNS,
    HELM_TEST_POD,
    INTERNET,
    METADATA,
    NEVER,
    OPERATOR,
    OPERATOR_HTTP_PORT,
    PROMETHEUS,
    Analysis,
    analyse,
    compare,
    expected,
    scenario_analysis,
    scenario_objects,
    subjects,
)


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
                    assert conns == case.client_ports, f"{w}: {conns}"
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
