"""`SecureWebGateway.spec.access`: how the customer's clients reach and find the proxy.

A TLS listener (an encrypted way in, Squid's `https_port`) and a PAC file (proxy
auto-configuration) generated from the spec (`render.pac`). Cross-field rules name the field
they are about.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from swg_operator.api.base import CamelModel
from swg_operator.api.types import DnsLabel, DomainName

DEFAULT_TLS_PORT = 3129

# Messages of the cross-field rules (api.crd repeats them as CEL rules).
PLAINTEXT_NEEDS_TLS = (
    "access.tls.plaintext: false closes the plain listener; it needs "
    "access.tls.enabled: true, or the proxy has no listener"
)
HOSTNAME_REQUIRED = (
    "access.hostname: required when access.pac.enabled or access.tls.enabled is true"
)
TLS_ONLY_NEEDS_NO_INSPECTION = (
    "access.tls.plaintext: false cannot go with options.httpsInspection.enabled: true; Squid "
    "decrypts HTTPS (CONNECT tunnels) on the plain listener only, so HTTPS would have no way in; "
    "keep access.tls.plaintext: true (the PAC file sends https:// URLs to the plain listener) "
    "or turn inspection off"
)


class CertificateSecretRef(CamelModel):
    """A kubernetes.io/tls Secret in the tenant namespace."""

    name: DnsLabel
    """Name of the Secret (keys tls.crt and tls.key)."""


class TlsListener(CamelModel):
    """A TLS listener: clients speak TLS to the proxy itself (`HTTPS host:port` in a PAC file,
    `curl --proxy https://...`), so that nothing between them and the gateway reads the
    requests, proxy credentials included."""

    enabled: bool = False
    """Open the TLS listener."""
    port: Annotated[int, Field(ge=1024, le=65535)] = DEFAULT_TLS_PORT
    """Port of the TLS listener on the proxy Service; must differ from the plain port."""
    certificate_secret: CertificateSecretRef | None = Field(
        default=None,
        description="kubernetes.io/tls Secret in the tenant namespace with the listener's "
        "server certificate (for access.hostname); when absent the operator generates one.",
    )
    plaintext: bool = True
    """Keep the plain listener open as well; false makes the TLS listener the only way in."""

    @model_validator(mode="after")
    def _some_listener(self) -> TlsListener:
        if not self.plaintext and not self.enabled:
            raise ValueError(PLAINTEXT_NEEDS_TLS)
        return self


class Pac(CamelModel):
    """A proxy auto-configuration file for the tenant's clients."""

    enabled: bool = False
    """Generate and serve the PAC file."""


class Access(CamelModel):
    """How the clients reach the proxy: listeners, and the PAC file that points them to it."""

    hostname: DomainName | None = Field(
        default=None,
        description="DNS name under which the clients reach the proxy (its Service's external "
        "address); the PAC file names it and a generated TLS certificate is issued for it. "
        "Required with pac.enabled or tls.enabled.",
    )
    tls: TlsListener = TlsListener()
    pac: Pac = Pac()

    @model_validator(mode="after")
    def _hostname_when_needed(self) -> Access:
        if self.hostname is None and (self.pac.enabled or self.tls.enabled):
            raise ValueError(HOSTNAME_REQUIRED)
        return self


def check_access(access: Access, *, inspection: bool) -> None:
    """The cross-field rule of spec.access against spec.options; ValueError naming the field."""
    if access.tls.enabled and not access.tls.plaintext and inspection:
        raise ValueError(TLS_ONLY_NEEDS_NO_INSPECTION)
