"""Operator-wide settings the platform team chooses at install time (Helm values)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints, model_validator

from swg_operator.api.base import CamelModel
from swg_operator.api.types import EMAIL_PATTERN, Cidr, DnsLabel

# A mirror host name (freshclam's DatabaseMirror) and a private mirror URL (PrivateMirror): they
# reach freshclam.conf, so no space, newline or quote can pass.
MIRROR_HOST_PATTERN = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$"
MIRROR_URL_PATTERN = (
    r"^https?://[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*"
    r"(:[0-9]{1,5})?(/[A-Za-z0-9._~-]+)*/?$"
)
# key=value[,key=value] over label characters (as dnsPodLabel).
POD_LABEL_PATTERN = (
    r"^([a-z0-9.-]+/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?=([A-Za-z0-9]([-A-Za-z0-9_.]*"
    r"[A-Za-z0-9])?)?(,([a-z0-9.-]+/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?=([A-Za-z0-9]"
    r"([-A-Za-z0-9_.]*[A-Za-z0-9])?)?)*$"
)
MirrorHost = Annotated[str, StringConstraints(pattern=MIRROR_HOST_PATTERN, max_length=253)]
DomainName = Annotated[str, StringConstraints(pattern=MIRROR_HOST_PATTERN, max_length=253)]
MirrorUrl = Annotated[str, StringConstraints(pattern=MIRROR_URL_PATTERN, max_length=512)]
PodLabel = Annotated[str, StringConstraints(pattern=POD_LABEL_PATTERN, max_length=512)]
Port = Annotated[int, Field(ge=1, le=65535)]


class Images(CamelModel):
    proxy: str = "ghcr.io/swg-operator/proxy:0.1.0"
    antivirus: str = "ghcr.io/swg-operator/antivirus:0.1.0"
    logstore: str = "ghcr.io/swg-operator/logstore:0.1.0"
    pull_policy: str = "IfNotPresent"
    pull_secrets: Annotated[
        tuple[DomainName, ...],
        Field(
            max_length=8,
            description="Names of docker-registry Secrets every tenant pod pulls its images "
            "with (imagePullSecrets). Each must exist in every tenant namespace: the platform "
            "copies it there (the operator reads no Secret).",
        ),
    ] = ()


class MirrorPods(CamelModel):
    """Pods of an in-cluster signature mirror the anti-virus pods may reach (like the DNS)."""

    namespace: DnsLabel
    pod_label: PodLabel = Field(description="key=value[,key=value] labels of the mirror's pods.")


class Freshclam(CamelModel):
    """The freshclam sidecar of every anti-virus pod (signatureSource freshclam)."""

    database_mirror: MirrorHost = Field(
        default="database.clamav.net",
        description="freshclam's DatabaseMirror (HTTPS), used when privateMirrors is empty.",
    )
    private_mirrors: Annotated[
        tuple[MirrorUrl, ...],
        Field(
            max_length=8,
            description="freshclam's PrivateMirror URLs (http:// or https://), tried in order; "
            "they replace databaseMirror. Run one for any platform with more than a few "
            "tenants: the public CDN rate-limits many clients behind one address.",
        ),
    ] = ()
    checks_per_day: Annotated[int, Field(ge=1, le=50)] = Field(
        default=12, description="freshclam's Checks: database checks per day."
    )
    mirror_cidrs: Annotated[
        tuple[Cidr, ...],
        Field(
            description="Networks the anti-virus pods may reach an in-cluster mirror in "
            "(NetworkPolicy egress). Empty, and no mirrorPods: freshclam goes through the "
            "tenant's own proxy, which lets the anti-virus pods reach the mirror's names only; "
            "they never get internet egress."
        ),
    ] = ()
    mirror_pods: MirrorPods | None = Field(
        default=None, description="An in-cluster mirror's pods, reached by label."
    )
    mirror_ports: Annotated[
        tuple[Port, ...],
        Field(
            max_length=8,
            description="TCP ports of the mirror (NetworkPolicy egress). Empty: the ports of "
            "privateMirrors' URLs, or 443 for databaseMirror. Set them when mirrorPods listen "
            "on another port than their Service.",
        ),
    ] = ()

    @model_validator(mode="after")
    def _http_mirrors_need_a_direct_path(self) -> Freshclam:
        # Without mirrorCidrs or mirrorPods freshclam goes through the tenant's proxy, where it
        # tunnels (CONNECT) even to an http:// URL, which the proxy refuses off port 443.
        if self.mirror_cidrs or self.mirror_pods is not None:
            return self
        plain = [url for url in self.private_mirrors if url.startswith("http://")]
        if plain:
            raise ValueError(
                f"antivirus.freshclam.privateMirrors: {', '.join(plain)} is http://, which "
                "freshclam cannot reach through the tenant's proxy: use an https:// mirror, or "
                "declare mirrorCidrs or mirrorPods so the anti-virus pods reach it directly"
            )
        return self


class AntivirusSettings(CamelModel):
    """Where every tenant's clamd gets its signature database (docs/antivirus.md)."""

    signature_source: Literal["freshclam", "configMap"] = Field(
        default="freshclam",
        description="freshclam: the public ClamAV database, kept current by a freshclam "
        "sidecar in each anti-virus pod. configMap: the signature files of the ConfigMap "
        "signatureConfigMap in the operator's namespace, copied into each tenant namespace "
        "(no public database: for air-gapped platforms).",
    )
    freshclam: Freshclam = Freshclam()
    signature_config_map: DnsLabel = Field(
        default="swg-clamav-signatures",
        description="The platform's signature ConfigMap in the operator's namespace "
        "(signatureSource configMap).",
    )


class MailSettings(CamelModel):
    """The SMTP relay the operator mails notices to tenants' contacts through (docs/notices.md).
    No host: notices are recorded in the tenant namespace and no mail is sent."""

    host: MirrorHost | None = Field(default=None, description="The relay's host name.")
    port: Port = Field(default=587, description="The relay's submission port.")
    sender: Annotated[str, StringConstraints(pattern=EMAIL_PATTERN, max_length=254)] = Field(
        default="swg-operator@swg-operator.invalid",
        description="The From address of every notice; set it to an address of yours.",
    )
    starttls: bool = Field(
        default=True,
        description="Require STARTTLS, the relay's certificate verified: a relay that does not "
        "offer it gets no credential and no mail. false only for a relay on the same host.",
    )
    credentials_secret: DnsLabel | None = Field(
        default=None,
        description="Secret in the operator's namespace with keys username and password for "
        "the relay's login; none: no login.",
    )
    timeout_seconds: Annotated[float, Field(gt=0, le=300)] = 30.0
    max_tries: Annotated[int, Field(ge=1, le=100)] = Field(
        default=10, description="Tries of one mail before it is marked failed."
    )
    retry_seconds: Annotated[float, Field(ge=0, le=86400)] = Field(
        default=60.0, description="Wait before the second try; doubled after each, jittered."
    )
    max_retry_seconds: Annotated[float, Field(ge=0, le=86400)] = 3600.0


class ReceiptSettings(CamelModel):
    """How purge receipts are signed (docs/operator.md, "Signed receipts")."""

    signing_key_secret: DnsLabel = Field(
        default="swg-receipt-signing-key",
        description="Secret in the operator's namespace holding the Ed25519 key that signs "
        "purge receipts; the operator generates it when it does not exist.",
    )


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
    cluster_domain: DomainName = Field(
        default="cluster.local",
        description="The cluster's DNS domain. Tenant proxies refuse every name under it "
        "before any lookup and name their anti-virus Service fully qualified with it.",
    )
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
    monitoring_namespace: DnsLabel | None = Field(
        default=None,
        description="Namespace of the platform's Prometheus. Each tenant's log store admits it "
        "on its metrics port (the tenant's data-plane figures, never the logs). None: nothing "
        "outside the tenant's namespace can scrape them.",
    )
    antivirus: AntivirusSettings = AntivirusSettings()
    mail: MailSettings = MailSettings()
    receipts: ReceiptSettings = ReceiptSettings()
    resource_requests_percent: Annotated[int, Field(ge=1, le=100)] = Field(
        default=100,
        description="Percent of each sized CPU and memory request that tenant containers "
        "request (what the scheduler reserves on a node); limits, the ResourceQuota and the "
        "sizing figures in status stay as sized. 100: requests as sized. Lower it to pack "
        "tenants whose declared peak is rarely reached onto fewer nodes (docs/sizing.md).",
    )
    reserved_namespaces: Annotated[
        tuple[DnsLabel, ...],
        Field(
            description="Namespaces no tenant may have besides the operator's own, the DNS and "
            "signature mirror namespaces and the system ones: a tenant whose `swg-<name>` is "
            "one of them is Stalled and nothing in it is touched."
        ),
    ] = ()
    test_allowed_loopback: Annotated[
        tuple[Cidr, ...],
        Field(
            description="TEST ONLY: loopback networks the proxy may reach (the data-plane test "
            "origin). Empty in production."
        ),
    ] = ()
