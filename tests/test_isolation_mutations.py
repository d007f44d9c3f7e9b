"""The tenant isolation comparison (test_isolation.py) can fail: deliberately wrong policies
are analysed and each shows up as an extra edge; the unmutated tenant passes; and a canary for
netpol-analyzer's misreading of IPv6 blocks."""

from __future__ import annotations

import copy
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from devtools.security.analysis import (
    write_analysed,
)
from devtools.security.connectivity import (
    Connectivity,
    Workload,
    parse_edges,
)
from devtools.security.tools import analyzer

from isolation_scenario import (
    ANALYSERS,
    CASES,
    Case,
    analyse,
    compare,
    expected,
    scenario_objects,
    subjects,
)


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
