"""NetworkPolicies: the tenant namespace is closed by default and opened only where the service
needs it.

* `default-deny`: every pod, ingress and egress.
* `allow-dns`: every pod may ask the cluster DNS (UDP and TCP 53) and nothing else there.
* `proxy-ingress-clients`: the proxy port and the TLS listener's (spec.access.tls; the TLS port
  alone with `plaintext: false`), from `clients.allowedCIDRs` only, and the proxy port from the
  tenant's own anti-virus pods when freshclam reaches its mirror through the proxy (Squid lets
  them reach the mirror and nothing else).
* `proxy-egress`: the proxy may reach the anti-virus (ICAP), the log store's ingest port (its
  log shipper) and the internet:
  0.0.0.0/0 and ::/0 minus the cluster's networks (settings.cluster_cidrs), the API server's
  networks (settings.api_server_cidrs), link-local addresses (cloud metadata) and loopback.
  Another tenant's pods live in the cluster's networks, so no tenant can reach another.
  (IPv4-mapped IPv6 cannot be written in a NetworkPolicy; such a connection leaves the pod as
  IPv4 and meets the IPv4 rule.) External ICAP services (the sandbox option, icaps:// only)
  are reached through this rule whether named by address or host name (NetworkPolicy cannot
  name hosts); an address inside the cluster's networks is refused by
  `render.checks.check_sandbox`.
* `antivirus`: ICAP from the proxy only; egress to the log store's ingest port and, with the
  freshclam signature source while the tenant is served, to the signature mirror: the mirror's
  pods or networks on its ports when the settings place it in the cluster (mirrorPods,
  mirrorCIDRs), else the tenant's proxy pods on the proxy port (freshclam goes through the
  proxy). The pod that parses hostile files never has an internet path of its own.
* `logstore`: records from the proxy's and the anti-virus's log shippers on the ingest port;
  export (HTTP) from the API server's networks only (settings.api_server_cidrs), which carry the
  admins' service-proxy requests.

Only pod selectors of the tenant's own namespace and ipBlocks appear, so no rule admits another
namespace. A cancelled tenant keeps no client or internet rule at all.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any, Final

from swg_operator import naming
from swg_operator.naming import Component
from swg_operator.render.access_tls import client_proxy_ports
from swg_operator.render.context import (
    ICAP_PORT,
    LOGSTORE_HTTP_PORT,
    LOGSTORE_INGEST_PORT,
    LOGSTORE_METRICS_PORT,
    Tenant,
    manifest,
)
from swg_operator.render.signatures import mirror_in_cluster, mirror_ports, proxy_admits_antivirus

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Never reachable from a tenant's proxy, whatever the cluster's networks are.
ALWAYS_EXCLUDED: Final = (
    "0.0.0.0/8",  # "this network"
    "127.0.0.0/8",  # loopback
    "169.254.0.0/16",  # link-local, cloud metadata (169.254.169.254)
    "::/128",  # the unspecified address: like 0.0.0.0, it reaches the host itself
    "::1/128",  # loopback
    "fe80::/10",  # link-local
    "fd00:ec2::254/128",  # cloud metadata over IPv6
)
EVERYWHERE: Final = ("0.0.0.0/0", "::/0")
DNS_PORT: Final = 53
NAMESPACE_NAME_LABEL: Final = "kubernetes.io/metadata.name"


def _networks(cidrs: Iterable[str]) -> list[IpNetwork]:
    return [ipaddress.ip_network(c, strict=False) for c in cidrs]


def _collapsed(networks: Iterable[IpNetwork]) -> list[IpNetwork]:
    """Sorted, without networks contained in others (IPv4 first)."""
    pool = list(networks)
    v4 = [n for n in pool if isinstance(n, ipaddress.IPv4Network)]
    v6 = [n for n in pool if isinstance(n, ipaddress.IPv6Network)]
    return [*ipaddress.collapse_addresses(v4), *ipaddress.collapse_addresses(v6)]


def excluded_destinations(tenant: Tenant) -> list[IpNetwork]:
    """What the proxy must never reach, collapsed: the cluster's networks, the API server's
    (which may lie outside them) and ALWAYS_EXCLUDED."""
    settings = tenant.settings
    return _collapsed(
        _networks((*settings.cluster_cidrs, *settings.api_server_cidrs, *ALWAYS_EXCLUDED))
    )


def _ip_block(cidr: IpNetwork, excluded: Iterable[IpNetwork]) -> dict[str, Any]:
    """`ipBlock` of `cidr` minus the excluded networks strictly inside it."""
    inside = [
        str(e)
        for e in excluded
        if e.version == cidr.version and e != cidr and e.subnet_of(cidr)  # type: ignore[arg-type]
    ]
    block: dict[str, Any] = {"cidr": str(cidr)}
    if inside:
        block["except"] = inside
    return block


def internet_blocks(tenant: Tenant) -> list[dict[str, Any]]:
    """0.0.0.0/0 and ::/0 minus what is excluded; a family whose whole range is excluded (a
    catch-all in cluster_cidrs) is left out entirely."""
    excluded = excluded_destinations(tenant)
    blocks = []
    for everything in _networks(EVERYWHERE):
        if any(e.version == everything.version and e.prefixlen == 0 for e in excluded):
            continue
        blocks.append({"ipBlock": _ip_block(everything, excluded)})
    return blocks


def client_blocks(tenant: Tenant) -> list[dict[str, Any]]:
    """The declared client networks; cluster networks inside one (e.g. with allowAnyClient)
    stay excluded, so no pod, of this tenant or another, connects as a client."""
    excluded = _collapsed(_networks(tenant.settings.cluster_cidrs))
    return [
        {"ipBlock": _ip_block(cidr, excluded)}
        for cidr in _networks(tenant.spec.clients.allowed_cidrs)
    ]


def _pods(tenant: Tenant, component: Component) -> dict[str, Any]:
    return {"podSelector": {"matchLabels": tenant.selector(component)}}


def _tcp(*ports: int) -> list[dict[str, Any]]:
    return [{"protocol": "TCP", "port": port} for port in ports]


def _policy(
    tenant: Tenant,
    name: str,
    *,
    pods: dict[str, Any],
    ingress: list[dict[str, Any]] | None = None,
    egress: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {"podSelector": pods, "policyTypes": []}
    if ingress is not None:
        spec["policyTypes"].append("Ingress")
        spec["ingress"] = ingress
    if egress is not None:
        spec["policyTypes"].append("Egress")
        spec["egress"] = egress
    return manifest("networking.k8s.io/v1", "NetworkPolicy", tenant.metadata(name), spec=spec)


def default_deny(tenant: Tenant) -> dict[str, Any]:
    return _policy(tenant, naming.POLICY_DEFAULT_DENY, pods={}, ingress=[], egress=[])


def _dns_pod_labels(selector: str) -> dict[str, str]:
    """`k8s-app=kube-dns` (comma-separated for several labels) as matchLabels."""
    out: dict[str, str] = {}
    for term in selector.split(","):
        key, sep, value = term.strip().partition("=")
        if not sep or not key:
            raise ValueError(f"settings.dnsPodLabel: {selector!r} is not key=value[,key=value]")
        out[key.strip()] = value.strip()
    return out


def allow_dns(tenant: Tenant) -> dict[str, Any]:
    settings = tenant.settings
    dns_pods = {
        "namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: settings.dns_namespace}},
        "podSelector": {"matchLabels": _dns_pod_labels(settings.dns_pod_label)},
    }
    ports = [{"protocol": p, "port": DNS_PORT} for p in ("UDP", "TCP")]
    return _policy(
        tenant, naming.POLICY_ALLOW_DNS, pods={}, egress=[{"to": [dns_pods], "ports": ports}]
    )


def _antivirus_through_proxy(tenant: Tenant) -> bool:
    """The anti-virus pods reach the signature mirror through the tenant's proxy."""
    return tenant.antivirus_enabled and tenant.serving and proxy_admits_antivirus(tenant.settings)


def proxy_ingress(tenant: Tenant) -> dict[str, Any]:
    port = _tcp(tenant.settings.proxy_port)
    client_ports = _tcp(*client_proxy_ports(tenant.spec, tenant.settings))
    ingress = [{"from": client_blocks(tenant), "ports": client_ports}]
    if _antivirus_through_proxy(tenant):
        # freshclam; Squid lets these pods reach the mirror's names and nothing else.
        ingress.append({"from": [_pods(tenant, Component.ANTIVIRUS)], "ports": port})
    return _policy(
        tenant,
        naming.POLICY_PROXY_INGRESS,
        pods=_pods(tenant, Component.PROXY)["podSelector"],
        ingress=ingress,
    )


def proxy_egress(tenant: Tenant) -> dict[str, Any]:
    rules: list[dict[str, Any]] = []
    if tenant.antivirus_enabled:
        rules.append({"to": [_pods(tenant, Component.ANTIVIRUS)], "ports": _tcp(ICAP_PORT)})
    # The log shipper sidecar posts records to the log store's ingest port.
    rules.append({"to": [_pods(tenant, Component.LOGSTORE)], "ports": _tcp(LOGSTORE_INGEST_PORT)})
    internet = internet_blocks(tenant)
    if internet:
        # TCP on any port: Squid's own ACLs decide which ports clients may use.
        rules.append({"to": internet, "ports": [{"protocol": "TCP"}]})
    return _policy(
        tenant,
        naming.POLICY_PROXY_EGRESS,
        pods=_pods(tenant, Component.PROXY)["podSelector"],
        egress=rules,
    )


def signature_mirror_egress(tenant: Tenant) -> dict[str, Any] | None:
    """The anti-virus pods' path to the signature mirror (freshclam source, serving tenants
    only): the settings' mirror pods and networks on the mirror's ports, or, with neither, the
    tenant's proxy pods on the proxy port. Never the internet."""
    antivirus = tenant.settings.antivirus
    if antivirus.signature_source != "freshclam" or not tenant.serving:
        return None
    freshclam = antivirus.freshclam
    if not mirror_in_cluster(freshclam):
        if not _antivirus_through_proxy(tenant):
            return None
        return {
            "to": [_pods(tenant, Component.PROXY)],
            "ports": _tcp(tenant.settings.proxy_port),
        }
    peers: list[dict[str, Any]] = []
    if freshclam.mirror_pods is not None:
        mirror = freshclam.mirror_pods
        peers.append(
            {
                "namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: mirror.namespace}},
                "podSelector": {"matchLabels": _dns_pod_labels(mirror.pod_label)},
            }
        )
    peers += [{"ipBlock": {"cidr": cidr}} for cidr in freshclam.mirror_cidrs]
    return {"to": peers, "ports": _tcp(*mirror_ports(freshclam))}


def antivirus_policy(tenant: Tenant) -> dict[str, Any]:
    egress = [{"to": [_pods(tenant, Component.LOGSTORE)], "ports": _tcp(LOGSTORE_INGEST_PORT)}]
    mirror = signature_mirror_egress(tenant)
    if mirror is not None:
        egress.append(mirror)
    return _policy(
        tenant,
        naming.POLICY_ANTIVIRUS,
        pods=_pods(tenant, Component.ANTIVIRUS)["podSelector"],
        ingress=[{"from": [_pods(tenant, Component.PROXY)], "ports": _tcp(ICAP_PORT)}],
        egress=egress,
    )


def monitoring_ingress(tenant: Tenant) -> list[dict[str, Any]]:
    """The platform's Prometheus (settings.monitoring_namespace) on the log store's metrics
    port only: it never reaches downloads or ingestion. None without that setting."""
    namespace = tenant.settings.monitoring_namespace
    if namespace is None:
        return []
    peer = {"namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: namespace}}}
    return [{"from": [peer], "ports": _tcp(LOGSTORE_METRICS_PORT)}]


def logstore_policy(tenant: Tenant) -> dict[str, Any]:
    writers = [_pods(tenant, Component.PROXY)]
    if tenant.antivirus_enabled:
        writers.append(_pods(tenant, Component.ANTIVIRUS))
    ingress = [{"from": writers, "ports": _tcp(LOGSTORE_INGEST_PORT)}]
    api_server = [{"ipBlock": {"cidr": c}} for c in tenant.settings.api_server_cidrs]
    if api_server:
        ingress.append({"from": api_server, "ports": _tcp(LOGSTORE_HTTP_PORT)})
    ingress += monitoring_ingress(tenant)
    return _policy(
        tenant,
        naming.POLICY_LOGSTORE,
        pods=_pods(tenant, Component.LOGSTORE)["podSelector"],
        ingress=ingress,
    )


def network_policies(tenant: Tenant) -> list[dict[str, Any]]:
    """Every NetworkPolicy of the tenant, default deny first."""
    policies = [default_deny(tenant), allow_dns(tenant)]
    if tenant.serving:
        policies += [proxy_ingress(tenant), proxy_egress(tenant)]
    if tenant.antivirus_enabled:
        policies.append(antivirus_policy(tenant))
    policies.append(logstore_policy(tenant))
    return policies
