"""Operator-wide settings the platform team chooses at install time (Helm values)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from swg_operator.api.base import CamelModel
from swg_operator.api.types import Cidr, DnsLabel


class Images(CamelModel):
    proxy: str = "ghcr.io/swg-operator/proxy:0.1.0"
    antivirus: str = "ghcr.io/swg-operator/antivirus:0.1.0"
    logstore: str = "ghcr.io/swg-operator/logstore:0.1.0"
    pull_policy: str = "IfNotPresent"


class OperatorSettings(CamelModel):
    """Settings shared by every tenant; they come from the operator's environment/Helm values."""

    operator_namespace: DnsLabel = "swg-system"
    images: Images = Images()
    cluster_cidrs: Annotated[
        tuple[Cidr, ...],
        Field(
            description="Pod, Service and node networks: never reachable from a tenant proxy "
            "(NetworkPolicy egress and Squid ACLs both refuse them)."
        ),
    ] = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fd00::/8")
    dns_namespace: DnsLabel = "kube-system"
    dns_pod_label: str = "k8s-app=kube-dns"
    proxy_port: int = 3128
    proxy_service_type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = Field(
        default="LoadBalancer",
        description="Type of each tenant's proxy Service. LoadBalancer and NodePort Services "
        "keep the client's source address (externalTrafficPolicy Local) so that the "
        "NetworkPolicy on clients.allowedCIDRs can judge it.",
    )
    api_server_cidrs: Annotated[
        tuple[Cidr, ...],
        Field(
            description="Networks the kube-apiserver reaches pods from. The log store admits "
            "them on its HTTP port: tenant admins download logs through the API server's "
            "service proxy. Empty: only in-namespace traffic reaches the log store."
        ),
    ] = ()
    test_allowed_loopback: Annotated[
        tuple[Cidr, ...],
        Field(
            description="TEST ONLY: loopback networks the proxy may reach (the data-plane test "
            "origin). Empty in production."
        ),
    ] = ()
