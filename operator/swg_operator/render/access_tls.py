"""The TLS listener (spec.access.tls): which Secret holds its server certificate, and what only
the operator can judge about it (its port against the platform's plain proxy port).

Squid opens it as an `https_port` (`render.squid`); the proxy pod mounts the certificate's
Secret at `ACCESS_TLS_DIR` (`render.workloads`); the Service and the NetworkPolicy expose its
port to the tenant's clients only (`render.services`, `render.network`).
"""

from __future__ import annotations

from typing import Final

from swg_operator import naming
from swg_operator.api import OperatorSettings, SecureWebGatewaySpec
from swg_operator.render.context import (
    PROXY_PORT_NAME,
    PROXY_TLS_PORT_NAME,
    key_pair_secret_name,
)
from swg_operator.render.errors import RenderError
from swg_operator.render.signatures import proxied_mirrors, proxy_admits_antivirus

TLS_PORT_CONFLICT: Final = "TLSPortConflict"


def tls_enabled(spec: SecureWebGatewaySpec) -> bool:
    return spec.access.tls.enabled


def plain_clients(spec: SecureWebGatewaySpec) -> bool:
    """Whether clients may use the plain listener (always, unless the TLS listener is the only
    way in)."""
    tls = spec.access.tls
    return not tls.enabled or tls.plaintext


def antivirus_uses_proxy(spec: SecureWebGatewaySpec, settings: OperatorSettings) -> bool:
    """The anti-virus pods reach the signature mirror through the proxy's plain port."""
    return (
        spec.antivirus.enabled
        and proxy_admits_antivirus(settings)
        and bool(proxied_mirrors(settings.antivirus.freshclam))
    )


def plain_listener(spec: SecureWebGatewaySpec, settings: OperatorSettings) -> bool:
    """Whether squid.conf opens the plain port: for the clients, or, with the TLS listener
    alone, for the anti-virus pods' way to the signature mirror only."""
    return plain_clients(spec) or antivirus_uses_proxy(spec, settings)


def proxy_ports(spec: SecureWebGatewaySpec, settings: OperatorSettings) -> list[tuple[str, int]]:
    """The proxy's ports by name, the plain one first while it is open."""
    out = []
    if plain_listener(spec, settings):
        out.append((PROXY_PORT_NAME, settings.proxy_port))
    if spec.access.tls.enabled:
        out.append((PROXY_TLS_PORT_NAME, spec.access.tls.port))
    return out


def client_proxy_ports(spec: SecureWebGatewaySpec, settings: OperatorSettings) -> list[int]:
    """The ports the tenant's clients may reach: the plain one unless `plaintext: false`, and
    the TLS listener's."""
    out = [settings.proxy_port] if plain_clients(spec) else []
    if spec.access.tls.enabled:
        out.append(spec.access.tls.port)
    return out


def generates_access_certificate(spec: SecureWebGatewaySpec) -> bool:
    """True when the TLS listener is on and the spec names no certificate Secret: the operator
    generates one (`naming.access_tls_secret_name()`) for access.hostname."""
    tls = spec.access.tls
    return tls.enabled and tls.certificate_secret is None


def access_tls_secret_name(spec: SecureWebGatewaySpec) -> str | None:
    """The Secret (tls.crt, tls.key) the proxy mounts the listener's certificate from; None
    without the TLS listener. Only referenced: no key is ever rendered."""
    tls = spec.access.tls
    generated = naming.access_tls_secret_name()
    return key_pair_secret_name(tls.enabled, tls.certificate_secret, generated)


def check_tls_listener(spec: SecureWebGatewaySpec, settings: OperatorSettings) -> None:
    """The TLS port must differ from the platform's plain proxy port (settings.proxyPort)."""
    tls = spec.access.tls
    if tls.enabled and tls.port == settings.proxy_port:
        raise RenderError(
            TLS_PORT_CONFLICT,
            (
                f"spec.access.tls.port: {tls.port} is the platform's plain proxy port; choose "
                f"another port for the TLS listener",
            ),
        )
