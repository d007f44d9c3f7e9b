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
            raise ValueError(
                "access.tls.plaintext: false closes the plain listener; it needs "
                "access.tls.enabled: true, or the proxy has no listener"
            )
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
        if self.hostname is None:
            for field, on in (
                ("access.pac.enabled", self.pac.enabled),
                ("access.tls.enabled", self.tls.enabled),
            ):
                if on:
                    raise ValueError(f"access.hostname: required when {field} is true")
        return self
