"""`SecureWebGateway.spec`: what a customer's contract declares.

The models are the single source of truth: the CRD's schema is generated from them, and the
operator validates every resource it reads with them again (the API server may run an older CRD).
Cross-field rules live in `model_validator`s here and as CEL rules in the CRD (see `api.crd`);
the message of each names the field it is about.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Final, Literal

from pydantic import Field, field_validator, model_validator

from swg_logstore.retention import MAX_RETENTION_DAYS, MIN_RETENTION_DAYS, load_zone
from swg_operator.api.access import Access, check_access
from swg_operator.api.authentication import Authentication, GroupName
from swg_operator.api.base import CamelModel
from swg_operator.api.block_page import BlockPage
from swg_operator.api.content import ContentControls, check_content_controls
from swg_operator.api.types import (
    ByteQuantity,
    CategoryName,
    Cidr,
    DisplayText,
    DnsLabel,
    Domain,
    Email,
    IcapUrl,
    LabelValue,
    RbacSubjectName,
    ServiceCode,
    TimeZoneName,
    UrlRegex,
    cidr_is_catch_all,
)

MAX_LIST = 1000  # entries per inline list; larger lists belong in the category catalogue


def _unique(values: tuple[str, ...], field: str) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"{field}: duplicate entry {value!r}")
        seen.add(value)


class Sizing(CamelModel):
    """Declared capacity: the ResourceQuota and replicas are computed from these."""

    endpoints: Annotated[int, Field(ge=1, le=1_000_000, description="Declared client terminals.")]
    requests_per_second: Annotated[
        int, Field(ge=1, le=1_000_000, description="Declared peak requests per second.")
    ]


class Clients(CamelModel):
    """Who may use the proxy."""

    allowed_cidrs: Annotated[
        tuple[Cidr, ...],
        Field(
            min_length=1,
            max_length=256,
            alias="allowedCIDRs",
            description="Client networks allowed to reach the proxy (canonical CIDRs).",
        ),
    ]
    allow_any_client: bool = Field(
        default=False,
        description="Must be true to list a catch-all CIDR (0.0.0.0/0 or ::/0) in allowedCIDRs.",
    )

    @model_validator(mode="after")
    def _catch_all_needs_consent(self) -> Clients:
        _unique(self.allowed_cidrs, "clients.allowedCIDRs")
        if not self.allow_any_client and any(cidr_is_catch_all(c) for c in self.allowed_cidrs):
            raise ValueError(
                "clients.allowedCIDRs: a catch-all CIDR opens the proxy to every address; "
                "set clients.allowAnyClient: true to allow it"
            )
        return self


class DomainList(CamelModel):
    """Domains matched with Squid dstdomain semantics."""

    domains: Annotated[tuple[Domain, ...], Field(max_length=MAX_LIST)] = ()
    """Hostnames; a leading dot means the domain and every subdomain."""


class DenyList(CamelModel):
    """Destinations refused."""

    domains: Annotated[tuple[Domain, ...], Field(max_length=MAX_LIST)] = ()
    """Hostnames; a leading dot means the domain and every subdomain."""
    url_regex: Annotated[
        tuple[UrlRegex, ...],
        Field(max_length=MAX_LIST, description="Squid url_regex entries (POSIX extended, ASCII)."),
    ] = ()


class FilterPolicy(CamelModel):
    """A named rule set for a group of clients, applied before the tenant-wide rules."""

    name: DnsLabel
    """Unique name of the policy (a DNS label)."""
    source_cidrs: Annotated[tuple[Cidr, ...], Field(max_length=256, alias="sourceCIDRs")] = ()
    """Client networks the policy applies to (canonical CIDRs)."""
    groups: Annotated[tuple[GroupName, ...], Field(max_length=64)] = ()
    """Directory groups the policy applies to (spec.authentication.ldap): a user in any of
    them. With sourceCIDRs too, a request must match both."""
    blocked_categories: Annotated[tuple[CategoryName, ...], Field(max_length=256)] = ()
    """Category names from the platform URL catalogue."""
    allow: DomainList = DomainList()
    """Destinations always allowed for this group."""
    deny: DenyList = DenyList()
    """Destinations always refused for this group."""

    @model_validator(mode="after")
    def _selects_clients(self) -> FilterPolicy:
        if not self.source_cidrs and not self.groups:
            raise ValueError(
                f"urlFiltering.policies[{self.name}]: list sourceCIDRs, groups or both"
            )
        _unique(self.groups, f"urlFiltering.policies[{self.name}].groups")
        return self


class UrlFiltering(CamelModel):
    """URL filtering: blocked categories, allow and deny lists, per-group policies."""

    blocked_categories: Annotated[
        tuple[CategoryName, ...],
        Field(max_length=256, description="Category names from the platform's URL catalogue."),
    ] = ()
    allow: DomainList = DomainList()
    """Destinations always allowed."""
    deny: DenyList = DenyList()
    """Destinations always refused."""
    policies: Annotated[tuple[FilterPolicy, ...], Field(max_length=64)] = ()
    """Named rule sets for groups of clients, applied first; names are unique."""

    @model_validator(mode="after")
    def _unique_names(self) -> UrlFiltering:
        _unique(tuple(p.name for p in self.policies), "urlFiltering.policies[].name")
        _unique(self.blocked_categories, "urlFiltering.blockedCategories")
        return self


class ConfigMapRef(CamelModel):
    """A ConfigMap in the tenant namespace."""

    name: DnsLabel
    """Name of the ConfigMap."""


class SecretRef(CamelModel):
    """A Secret in the tenant namespace."""

    name: DnsLabel
    """Name of the Secret."""


class Antivirus(CamelModel):
    """Anti-virus scanning of downloads (c-icap + ClamAV)."""

    enabled: bool = True
    """Scan responses for malware."""
    max_scan_size: ByteQuantity = Field(
        default="50Mi",
        description="The scan limit (at most 2000Mi is applied): bodies up to it are scanned "
        "whole; larger bodies, and encrypted archives, cannot be scanned and are blocked "
        "(logged over-limit / encrypted); with failOpen a body whose Content-Length is over "
        "the limit passes unscanned (logged not-scanned).",
    )
    fail_open: bool = Field(
        default=False,
        description="When the scanner is down: false blocks traffic (5xx), true lets it pass "
        "unscanned and logs that it was not scanned. Also decides bodies over maxScanSize.",
    )
    custom_signatures: ConfigMapRef | None = Field(
        default=None,
        description="ConfigMap in the tenant namespace with ClamAV signature files "
        "(*.ndb, *.hsb, *.ldb) to load in addition to the platform's database.",
    )


class Bypass(CamelModel):
    """Destinations that skip URL filtering and anti-virus scanning."""

    domains: Annotated[tuple[Domain, ...], Field(max_length=MAX_LIST)] = ()
    """Hostnames; a leading dot means the domain and every subdomain."""
    cidrs: Annotated[tuple[Cidr, ...], Field(max_length=256, alias="CIDRs")] = ()
    """Destination networks (canonical CIDRs)."""


class DoNotInspect(CamelModel):
    """Destinations never decrypted."""

    domains: Annotated[tuple[Domain, ...], Field(max_length=MAX_LIST)] = ()
    """Hostnames; a leading dot means the domain and every subdomain."""
    categories: Annotated[tuple[CategoryName, ...], Field(max_length=256)] = ()
    """Category names from the platform URL catalogue (e.g. banking)."""


class HttpsInspection(CamelModel):
    """TLS inspection ("HTTPS decode") with a per-tenant CA that never leaves its namespace."""

    enabled: bool = False
    """Decrypt and inspect HTTPS with the tenant CA."""
    do_not_inspect: DoNotInspect = DoNotInspect()
    ca_secret: SecretRef | None = Field(
        default=None,
        description="kubernetes.io/tls Secret in the tenant namespace holding the CA; "
        "when absent the operator generates one there.",
    )


class Sandbox(CamelModel):
    """Send files to an external analysis service over ICAP."""

    enabled: bool = False
    """Send downloaded files to the analysis service."""
    icap_url: IcapUrl | None = Field(default=None, alias="icapURL")
    """ICAP service URL, icaps:// only (the analyser receives decrypted bodies), not on the
    pod itself (loopback, link-local); required when enabled."""
    fail_open: bool = Field(
        default=False,
        description="When the analyser cannot be reached or fails: false refuses the download "
        "(5xx), true lets it pass unanalysed; either way the sandbox log records the failure.",
    )

    @model_validator(mode="after")
    def _url_when_enabled(self) -> Sandbox:
        if self.enabled and self.icap_url is None:
            raise ValueError("options.sandbox.icapURL: required when options.sandbox.enabled")
        return self


class Options(CamelModel):
    """Service options: bypass, HTTPS inspection, sandbox."""

    bypass: Bypass = Bypass()
    https_inspection: HttpsInspection = HttpsInspection()
    sandbox: Sandbox = Sandbox()


class LogStorage(CamelModel):
    """The log volume."""

    size: Annotated[str, Field(pattern=r"^(auto|[0-9]+(Ki|Mi|Gi|Ti))$", max_length=32)] = "auto"
    """Volume size (e.g. 20Gi), or auto: sized from requestsPerSecond and retentionDays."""
    storage_class_name: DnsLabel | None = None
    """StorageClass of the volume; the cluster default when absent."""


class Logs(CamelModel):
    """Access, URL-filter, anti-virus and sandbox logs, downloadable by the admins."""

    retention_days: Annotated[int, Field(ge=MIN_RETENTION_DAYS, le=MAX_RETENTION_DAYS)] = Field(
        default=MAX_RETENTION_DAYS, description="Calendar days kept, today included."
    )
    time_zone: TimeZoneName = Field(
        default="UTC",
        description="IANA time zone of the customer's days: the log store's days end at its "
        "local midnight (retention, downloads); timestamps stay UTC.",
    )
    storage: LogStorage = LogStorage()

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            load_zone(value)
        except ValueError as err:
            raise ValueError(f"unknown IANA time zone {value!r}") from err
        return value


class Placement(CamelModel):
    """Where the tenant runs and keeps its data."""

    region: LabelValue | None = Field(
        default=None,
        description="Pins every pod and volume of the tenant to nodes of this "
        "topology.kubernetes.io/region (data residency).",
    )


class Admin(CamelModel):
    """A customer admin: read access to the tenant's status and logs."""

    kind: Literal["User", "Group"]
    """User or Group, as in an RBAC subject."""
    name: RbacSubjectName
    """User or group name as the cluster authenticates it."""


# A cancelled tenant's data is purged no later than this many days after the cancellation
# (reconcile.lifecycle computes the deadline with it). The log retention limit is the log
# store's own: swg_logstore.retention.MAX_RETENTION_DAYS.
MAX_PURGE_DAYS: Final = 90


class Cancellation(CamelModel):
    """What happens when the contract is cancelled (the resource is deleted)."""

    purge_after_days: Annotated[int, Field(ge=0, le=MAX_PURGE_DAYS)] = Field(
        default=MAX_PURGE_DAYS, description="Days between cancellation (deletion) and the purge."
    )
    legal_hold: bool = Field(
        default=False, description="Postpones the purge while true; shown in status."
    )
    legal_hold_reason: DisplayText | None = None
    """Why the legal hold is set (shown to people)."""


class Phase(StrEnum):
    PROVISIONING = "Provisioning"
    READY = "Ready"
    DEGRADED = "Degraded"
    SUSPENDED = "Suspended"
    CANCELLED = "Cancelled"
    PURGING = "Purging"
    PURGED = "Purged"


class SecureWebGatewaySpec(CamelModel):
    service_code: ServiceCode = Field(description="Contract/service code, e.g. SWG-0001234.")
    display_name: DisplayText | None = None
    """Customer name shown to people."""
    contacts: Annotated[tuple[Email, ...], Field(max_length=16)] = ()
    """Email addresses for change and incident notices."""
    sizing: Sizing
    clients: Clients
    url_filtering: UrlFiltering = UrlFiltering()
    antivirus: Antivirus = Antivirus()
    options: Options = Options()
    content_controls: ContentControls = ContentControls()
    access: Access = Access()
    """Listeners and the PAC file (api.access)."""
    authentication: Authentication = Authentication()
    """Users and groups at the proxy (api.authentication)."""
    block_page: BlockPage = BlockPage()
    """The page shown when a request is blocked (api.block_page)."""
    logs: Logs = Logs()
    placement: Placement = Placement()
    admins: Annotated[tuple[Admin, ...], Field(max_length=64)] = ()
    """Customer admins: read access to the tenant's status and logs."""
    suspended: bool = False
    """Stop serving traffic while keeping configuration and logs."""
    cancellation: Cancellation = Cancellation()

    @model_validator(mode="after")
    def _content_controls(self) -> SecureWebGatewaySpec:
        check_content_controls(self)
        check_access(self.access, inspection=self.options.https_inspection.enabled)
        return self

    @model_validator(mode="after")
    def _groups_need_directory(self) -> SecureWebGatewaySpec:
        if self.authentication.ldap is None:
            for policy in self.url_filtering.policies:
                if policy.groups:
                    raise ValueError(GROUPS_NEED_DIRECTORY)
        return self


GROUPS_NEED_DIRECTORY: Final = (
    "urlFiltering.policies[].groups: selecting users by group needs a directory; "
    "set authentication.ldap"
)
