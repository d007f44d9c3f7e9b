"""Data-plane config text (squid.conf, ACL files, c-icap and clamd config) for one tenant.

PLACEHOLDER until the data-plane templates land: same signature, minimal output.
"""

from __future__ import annotations

from swg_operator.api import OperatorSettings, SecureWebGatewaySpec
from swg_operator.catalogue import Catalogue


def render_dataplane_files(
    spec: SecureWebGatewaySpec, *, catalogue: Catalogue, settings: OperatorSettings
) -> dict[str, str]:
    """Return every data-plane config file of the tenant: file name -> text."""
    del catalogue
    return {"squid.conf": f"http_port {settings.proxy_port}\n# {spec.service_code}\n"}
