"""Every data-plane config file of one tenant, keyed by the workload that reads it.

Pure: the spec, the URL catalogue and the operator's settings in; the typed inputs of each
daemon's config built from them (`SquidConfig`, `CicapConfig`, `ClamdConfig`,
`FreshclamConfig`) and rendered by that daemon's module (`render.squid`, `render.cicap`,
`render.clamd`, `render.freshclam`); the files out as component -> file name -> text. The
files follow the images' layout (`render.context`) and are what the data-plane test tier runs
Squid, c-icap and clamd with (e2e/dataplane).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from swg_operator.api import OperatorSettings, SecureWebGatewaySpec
from swg_operator.catalogue import Catalogue
from swg_operator.naming import Component, service_name
from swg_operator.quantities import parse_bytes
from swg_operator.render.access_tls import plain_clients, tls_enabled
from swg_operator.render.cicap import ICAP_SERVICE_PATH, CicapConfig, cicap_files
from swg_operator.render.clamd import CLAMD_MAX_BYTES, ClamdConfig, clamd_files
from swg_operator.render.content import content_antivirus_files, safe_search_squid
from swg_operator.render.context import CONF_DIR, ICAP_PORT
from swg_operator.render.freshclam import freshclam_files
from swg_operator.render.network import ALWAYS_EXCLUDED
from swg_operator.render.pac import PAC_URL_PATH, with_pac
from swg_operator.render.signatures import (
    freshclam_config,
    proxied_mirrors,
    proxy_admits_antivirus,
    uses_freshclam,
)
from swg_operator.render.squid import (
    SANDBOX_SERVICE,
    MirrorRule,
    SquidConfig,
    squid_files,
    visible_hostname,
)
from swg_operator.render.squid_acls import squid_access, squid_cidrs
from swg_operator.render.squid_auth import auth_files, pac_url_regex, squid_auth

# The data-plane workloads that read config files.
DATAPLANE_COMPONENTS: Final = (Component.PROXY, Component.ANTIVIRUS)


def sandbox_url(spec: SecureWebGatewaySpec) -> str:
    """The sandbox analyser's ICAP URL; empty when it is off. With anti-virus on, the sandbox
    follows clamd in the response chain; without, it is the only response adaptation."""
    sandbox = spec.options.sandbox
    if sandbox.enabled and sandbox.icap_url:
        return sandbox.icap_url
    return ""


def sandbox_service_name(spec: SecureWebGatewaySpec) -> str | None:
    """Squid's icap_service name of the sandbox when squid.conf defines one, else None (no
    sandbox log)."""
    return SANDBOX_SERVICE if sandbox_url(spec) else None


def effective_scan_limit(spec: SecureWebGatewaySpec) -> int:
    """The tenant's anti-virus scan limit in bytes: spec.antivirus.maxScanSize, capped at what
    clamd can scan. c-icap, clamd and Squid all get this one value (docs/antivirus.md)."""
    return min(parse_bytes(spec.antivirus.max_scan_size), CLAMD_MAX_BYTES)


def service_host(settings: OperatorSettings, component: Component, namespace: str | None) -> str:
    """A Service of the tenant namespace by its full name (Squid and freshclam look names up as
    written, without the pod's search list); the short name when no namespace is given
    (previews of the config text only)."""
    service = service_name(component)
    if namespace is None:
        return service
    return f"{service}.{namespace}.svc.{settings.cluster_domain}"


def antivirus_host(settings: OperatorSettings, namespace: str | None) -> str:
    """The anti-virus Service as Squid names it in its ICAP URL."""
    return service_host(settings, Component.ANTIVIRUS, namespace)


def signature_mirror_rules(
    spec: SecureWebGatewaySpec, settings: OperatorSettings
) -> list[MirrorRule]:
    """What squid.conf lets the tenant's anti-virus pods do (freshclam through the proxy, no
    mirror in the cluster): reach the mirror's hosts on their ports, nothing else. Empty when
    freshclam does not go through the proxy, and without cluster networks to tell the
    anti-virus pods by."""
    if not (spec.antivirus.enabled and proxy_admits_antivirus(settings)):
        return []
    return [
        MirrorRule(f"swg_av_mirror{index}", m.host, m.port)
        for index, m in enumerate(proxied_mirrors(settings.antivirus.freshclam))
    ]


def squid_config(
    spec: SecureWebGatewaySpec,
    *,
    catalogue: Catalogue,
    settings: OperatorSettings,
    namespace: str | None,
) -> SquidConfig:
    forbidden = (*ALWAYS_EXCLUDED, *settings.cluster_cidrs, *settings.api_server_cidrs)
    return SquidConfig(
        service_code=spec.service_code,
        proxy_port=settings.proxy_port,
        cluster_domain=settings.cluster_domain,
        inspection=spec.options.https_inspection.enabled,
        allowed_cidrs=tuple(squid_cidrs(spec.clients.allowed_cidrs)),
        forbidden_dst=tuple(squid_cidrs(forbidden)),
        test_loopback=tuple(squid_cidrs(settings.test_allowed_loopback)),
        access=squid_access(spec, catalogue),
        antivirus=spec.antivirus.enabled,
        fail_open=spec.antivirus.fail_open,
        max_scan_bytes=effective_scan_limit(spec),
        icap_url=f"icap://{antivirus_host(settings, namespace)}:{ICAP_PORT}/{ICAP_SERVICE_PATH}",
        sandbox_url=sandbox_url(spec),
        mirror_rules=tuple(signature_mirror_rules(spec, settings)),
        mirror_src=tuple(squid_cidrs(settings.cluster_cidrs)),
        sandbox_fail_open=spec.options.sandbox.fail_open,
        safe_search=safe_search_squid(spec.content_controls),
        auth=squid_auth(
            spec.authentication.ldap,
            realm=spec.service_code,
            pac_url=pac_url_regex(
                visible_hostname=visible_hostname(spec.service_code),
                proxy_port=settings.proxy_port,
                path=PAC_URL_PATH,
                tls_port=spec.access.tls.port if tls_enabled(spec) else None,
            )
            if spec.access.pac.enabled
            else "",
        ),
        auth_files=auth_files(spec.authentication.ldap),
        tls_port=spec.access.tls.port if tls_enabled(spec) else None,
        plain_clients=plain_clients(spec),
        block_page=spec.block_page,
    )


@dataclass(frozen=True)
class AntivirusConfigs:
    cicap: CicapConfig
    clamd: ClamdConfig


def antivirus_configs(spec: SecureWebGatewaySpec, settings: OperatorSettings) -> AntivirusConfigs:
    limit = effective_scan_limit(spec)
    return AntivirusConfigs(
        cicap=CicapConfig(
            service_code=spec.service_code,
            visible_hostname=visible_hostname(spec.service_code),
            max_scan_bytes=limit,
        ),
        clamd=ClamdConfig(
            service_code=spec.service_code,
            max_scan_bytes=limit,
            freshclam=uses_freshclam(settings),
        ),
    )


def render_dataplane_files(
    spec: SecureWebGatewaySpec,
    *,
    catalogue: Catalogue,
    settings: OperatorSettings,
    namespace: str | None = None,
) -> dict[Component, dict[str, str]]:
    """Every data-plane config file of the tenant: component -> file name -> text (the proxy's
    always; the anti-virus's when it is enabled).

    The caller has checked that every category the spec names is in `catalogue`
    (`render.checks.check_categories`). `namespace`: the tenant namespace, which names the
    anti-virus Service in squid.conf (`antivirus_host`); the operator always passes it.
    """
    squid = squid_config(spec, catalogue=catalogue, settings=settings, namespace=namespace)
    files = {
        Component.PROXY: with_pac(
            squid_files(squid),
            spec.access,
            spec.options.bypass,
            proxy_port=settings.proxy_port,
            conf_dir=CONF_DIR,
            inspection=spec.options.https_inspection.enabled,
        )
    }
    if spec.antivirus.enabled:
        configs = antivirus_configs(spec, settings)
        antivirus = {**cicap_files(configs.cicap), **clamd_files(configs.clamd)}
        antivirus.update(content_antivirus_files(spec.content_controls))
        if uses_freshclam(settings):
            proxy_host = service_host(settings, Component.PROXY, namespace)
            antivirus.update(freshclam_files(freshclam_config(spec, settings, proxy_host)))
        files[Component.ANTIVIRUS] = antivirus
    return files


def flat_files(files: dict[Component, dict[str, str]]) -> dict[str, str]:
    """Every file by name (file names are unique across components)."""
    return {name: text for component in files.values() for name, text in component.items()}
