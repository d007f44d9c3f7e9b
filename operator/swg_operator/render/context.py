"""What every object builder of one tenant needs, in one frozen value, and the contract with the
data-plane images (ports, paths, user id) that the builders and the config text share."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

from swg_operator import labels
from swg_operator.api import OperatorSettings, SecureWebGatewaySpec
from swg_operator.api.access import CertificateSecretRef
from swg_operator.api.spec import SecretRef
from swg_operator.naming import Component
from swg_operator.render.resources import container_resources
from swg_operator.sizing_plan import SizingPlan, WorkloadPlan

# Ports (the proxy port comes from OperatorSettings.proxy_port).
ICAP_PORT: Final = 1344
LOGSTORE_HTTP_PORT: Final = 8080  # log downloads (the API server's service proxy) and health
LOGSTORE_INGEST_PORT: Final = 5140  # records from the shippers (HTTP POST /v1/ingest)
LOGSTORE_METRICS_PORT: Final = 9464  # GET /metrics: the tenant's data-plane figures
PROXY_PORT_NAME: Final = "proxy"
PROXY_TLS_PORT_NAME: Final = "proxy-tls"  # spec.access.tls: the TLS listener
ICAP_PORT_NAME: Final = "icap"
LOGSTORE_HTTP_PORT_NAME: Final = "http"
LOGSTORE_INGEST_PORT_NAME: Final = "ingest"
LOGSTORE_METRICS_PORT_NAME: Final = "metrics"

# The images' runtime contract (images/*/Dockerfile).
RUN_AS_ID: Final = 10001
CONF_DIR: Final = "/etc/swg/conf"
TLS_DIR: Final = "/etc/swg/tls"
# The directory bind Secret (spec.authentication.ldap.bindSecret), its password key only.
LDAP_SECRET_DIR: Final = "/etc/swg/ldap"  # noqa: S105 - a mount path
# The directory's CA Secret (spec.authentication.ldap.caSecret), its ca.crt key only.
LDAP_CA_DIR: Final = "/etc/swg/ldap-ca"
# The TLS listener's server certificate (spec.access.tls): tls.crt, tls.key of its Secret.
ACCESS_TLS_DIR: Final = "/etc/swg/access-tls"
STATE_DIR: Final = "/var/lib/swg"
# Private emptyDirs of each pod, not the node's shared directories.
TMP_DIR: Final = "/tmp"  # noqa: S108
SHM_DIR: Final = "/dev/shm"  # noqa: S108


class Lifecycle(StrEnum):
    """Which part of the service runs: the operator picks it from the resource's state."""

    ACTIVE = "Active"
    SUSPENDED = "Suspended"  # proxy and anti-virus at zero replicas; logs kept and exportable
    CANCELLED = "Cancelled"  # as suspended, and no client or internet traffic path at all


@dataclass(frozen=True)
class Tenant:
    """One tenant as the object builders see it."""

    name: str
    spec: SecureWebGatewaySpec
    settings: OperatorSettings
    sizing: SizingPlan
    lifecycle: Lifecycle
    namespace: str
    # The generated HTTPS-inspection CA's certificate (PEM), when the operator knows it.
    inspection_ca_certificate: str | None = None
    # The TLS listener's generated certificate (PEM), when the operator knows it.
    access_certificate: str | None = None
    # The platform's signature files to copy into the namespace (signatureSource configMap):
    # file name -> text; empty with the freshclam source.
    platform_signatures: Mapping[str, str] = field(default_factory=dict)

    @property
    def serving(self) -> bool:
        """True while the proxy should carry traffic."""
        return self.lifecycle is Lifecycle.ACTIVE

    @property
    def antivirus_enabled(self) -> bool:
        return self.spec.antivirus.enabled and self.sizing.antivirus is not None

    def container_resources(self, plan: WorkloadPlan, container: str) -> dict[str, Any]:
        """A container's `resources`: the sized limits, and the sized requests scaled by the
        platform's `resourceRequestsPercent` (what the scheduler reserves on a node)."""
        sized = plan.containers[container]
        return container_resources(
            sized.with_requests_percent(self.settings.resource_requests_percent)
        )

    def labels(self, component: Component | None = None) -> dict[str, str]:
        if component is None:
            return labels.tenant_labels(self.name, service_code=self.spec.service_code)
        return labels.component_labels(self.name, component, service_code=self.spec.service_code)

    def selector(self, component: Component) -> dict[str, str]:
        return labels.component_selector(self.name, component)

    def metadata(
        self,
        name: str,
        *,
        component: Component | None = None,
        annotations: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """`metadata` of a namespaced object of the tenant."""
        meta: dict[str, Any] = {
            "name": name,
            "namespace": self.namespace,
            "labels": self.labels(component),
        }
        if annotations:
            meta["annotations"] = annotations
        return meta


def key_pair_secret_name(
    enabled: bool, named: SecretRef | CertificateSecretRef | None, generated: str
) -> str | None:
    """The Secret (tls.crt, tls.key) in the tenant namespace that the proxy mounts a key pair
    from: None when its feature is off, else the one the spec names, else the one the operator
    generates (`generated`). The renderer only references it: no key is ever rendered."""
    if not enabled:
        return None
    return generated if named is None else named.name


def generates_inspection_ca(spec: SecureWebGatewaySpec) -> bool:
    """True when HTTPS inspection is on and the spec names no CA Secret: the operator generates
    the CA (`naming.inspection_ca_secret_name()`) and publishes its certificate."""
    inspection = spec.options.https_inspection
    return inspection.enabled and inspection.ca_secret is None


def manifest(
    api_version: str, kind: str, metadata: dict[str, Any], **fields: Any
) -> dict[str, Any]:
    """A Kubernetes object as a plain dict, in the usual key order."""
    return {"apiVersion": api_version, "kind": kind, "metadata": metadata, **fields}
