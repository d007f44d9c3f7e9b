"""Every name the operator gives a tenant's objects, computed in one place.

A tenant is named by its `SecureWebGateway`'s `metadata.name`, a DNS-1123 subdomain of up to 253
characters (dots allowed). The names derived from it must fit stricter rules: a Namespace name is
a DNS-1123 label (63 characters, no dots) and a label value has 63 characters at most. A derived
name that would break its rule is shortened to a readable prefix plus a stable digest of the full
name, so two different tenants never share a namespace and the same tenant always gets the same
one. Objects inside the tenant namespace have fixed, short names: the namespace already isolates
them.

Pure: no I/O, no clock.
"""

from __future__ import annotations

import hashlib
import re
from enum import StrEnum
from typing import Final

DNS_LABEL_MAX: Final = 63
LABEL_VALUE_MAX: Final = 63
DIGEST_LENGTH: Final = 10

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
_NOT_LABEL_CHAR = re.compile(r"[^a-z0-9-]+")
_NOT_LABEL_VALUE_CHAR = re.compile(r"[^A-Za-z0-9_.-]+")

NAMESPACE_PREFIX: Final = "swg-"


class Component(StrEnum):
    """The workloads of one tenant; each value is also its object and label name."""

    PROXY = "proxy"
    ANTIVIRUS = "antivirus"
    LOGSTORE = "logstore"


def digest(text: str, *, length: int = DIGEST_LENGTH) -> str:
    """A stable lowercase hex digest of `text` (not a security device: a name disambiguator)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def is_dns_label(value: str) -> bool:
    return len(value) <= DNS_LABEL_MAX and _DNS_LABEL.match(value) is not None


def is_label_value(value: str) -> bool:
    return len(value) <= LABEL_VALUE_MAX and _LABEL_VALUE.match(value) is not None


def dns_label(candidate: str, *, max_length: int = DNS_LABEL_MAX) -> str:
    """`candidate` itself when it is a DNS-1123 label within `max_length`; otherwise a
    readable prefix of it plus the digest of the whole `candidate`."""
    if len(candidate) <= max_length and is_dns_label(candidate):
        return candidate
    readable = _NOT_LABEL_CHAR.sub("-", candidate.lower()).strip("-")
    keep = max_length - DIGEST_LENGTH - 1
    prefix = readable[:keep].rstrip("-")
    tail = digest(candidate)
    return f"{prefix}-{tail}" if prefix else tail


def label_value(candidate: str) -> str:
    """`candidate` itself when it is a valid label value; otherwise a readable prefix of it
    plus the digest of the whole `candidate`."""
    if is_label_value(candidate):
        return candidate
    readable = _NOT_LABEL_VALUE_CHAR.sub("-", candidate)
    keep = LABEL_VALUE_MAX - DIGEST_LENGTH - 1
    prefix = re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", readable[:keep])
    tail = digest(candidate)
    return f"{prefix}-{tail}" if prefix else tail


# --- the tenant ------------------------------------------------------------------------------


def tenant_namespace(tenant: str) -> str:
    """The tenant's namespace: `swg-<tenant>`, shortened with a digest when it is too long or
    `tenant` has dots."""
    return dns_label(f"{NAMESPACE_PREFIX}{tenant}")


def tenant_label_value(tenant: str) -> str:
    """The value of the `swg.dev/tenant` label: the tenant name, shortened when too long."""
    return label_value(tenant)


# --- objects inside the tenant namespace -------------------------------------------------------


def service_account_name(component: Component) -> str:
    return component.value


def workload_name(component: Component) -> str:
    """Deployment name of a component."""
    return component.value


def service_name(component: Component) -> str:
    return component.value


def config_map_name(component: Component) -> str:
    return f"{component.value}-config"


def disruption_budget_name(component: Component) -> str:
    return component.value


def log_volume_claim_name() -> str:
    return "logstore-data"


def inspection_ca_secret_name() -> str:
    """The Secret the operator generates the HTTPS-inspection CA into when the spec names none."""
    return "https-inspection-ca"


def inspection_ca_certificate_name() -> str:
    """The ConfigMap publishing the generated CA's certificate (key `ca.crt`, no private key) for
    the customer's admins to install on their clients."""
    return "https-inspection-ca-cert"


def access_tls_secret_name() -> str:
    """The Secret the operator generates the TLS listener's server certificate into
    (spec.access.tls without certificateSecret)."""
    return "proxy-access-tls"


def access_tls_certificate_name() -> str:
    """The ConfigMap publishing the generated listener certificate (key `tls.crt`, no private
    key) for the customer's admins to give to their clients."""
    return "proxy-access-tls-cert"


def platform_signatures_name() -> str:
    """The tenant namespace's copy of the platform's ClamAV signature ConfigMap (settings
    antivirus.signatureSource configMap)."""
    return "antivirus-platform-signatures"


def resource_quota_name() -> str:
    return "tenant-quota"


def limit_range_name() -> str:
    return "tenant-limits"


def tenant_status_name() -> str:
    """The ConfigMap mirroring the tenant's status into its namespace, where its admins may
    read it (the `SecureWebGateway` is cluster-scoped)."""
    return "tenant-status"


def notices_config_map_name() -> str:
    """The ConfigMap holding the tenant's notice history and their mail's delivery state
    (`swg_operator.notices`), which its admins may read (`kubectl swg notices`)."""
    return "tenant-notices"


def purged_notices_config_map_name(tenant: str) -> str:
    """The ConfigMap in the operator's namespace holding the notices of a tenant whose
    namespace the purge deleted (the purge notice and its mail), until they are delivered."""
    return dns_label(f"purged-notices-{tenant}")


def tenant_reader_cluster_role_name() -> str:
    """The ClusterRole of the tenant admins' rights, shipped by the chart and bound in each
    tenant namespace. One operator serves a cluster (the CRD is cluster-wide), so the name is
    fixed, and the operator's `bind` right names it."""
    return "swg-tenant-reader"


def legacy_reader_role_name() -> str:
    """The Role older versions wrote into each tenant namespace for its admins; the operator
    deletes it where it finds it (the ClusterRole above replaced it)."""
    return "tenant-reader"


def admin_binding_name(kind: str, subject: str) -> str:
    """RoleBinding of one declared admin (`kind` User or Group). Subject names are free-form
    (emails, OIDC prefixes), so the name always carries a digest of the role it binds, kind and
    subject: a RoleBinding's roleRef cannot change, so a binding to another role is another
    object (the old one is pruned)."""
    readable = _NOT_LABEL_CHAR.sub("-", subject.lower()).strip("-")
    stem = f"admin-{kind.lower()}-{readable}".rstrip("-")
    tail = digest(f"ClusterRole/{tenant_reader_cluster_role_name()}:{kind}:{subject}")
    keep = DNS_LABEL_MAX - DIGEST_LENGTH - 1
    return f"{stem[:keep].rstrip('-')}-{tail}"


# NetworkPolicy names, one per rule set (see render.network).
POLICY_DEFAULT_DENY: Final = "default-deny"
POLICY_ALLOW_DNS: Final = "allow-dns"
POLICY_PROXY_INGRESS: Final = "proxy-ingress-clients"
POLICY_PROXY_EGRESS: Final = "proxy-egress"
POLICY_ANTIVIRUS: Final = "antivirus"
POLICY_LOGSTORE: Final = "logstore"
