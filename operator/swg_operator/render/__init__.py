"""The pure rendering core: (spec, catalogue, settings, capacity) -> every object of a tenant.

`render_tenant` returns the complete desired state of one tenant as plain dicts in apply order
(Namespace first, pods last), plus the data-plane config files and the sizing plan it used. It
does no I/O and reads no clock: the operator's reconcile loop applies and prunes its output, and
`swg-operator render` writes it to files. A spec that validated but cannot be honoured (an
unknown category, an unreachable sandbox) raises `RenderError` with a condition reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from swg_operator import naming
from swg_operator.api import OperatorSettings, SecureWebGatewaySpec
from swg_operator.capacity import Capacity
from swg_operator.catalogue import Catalogue
from swg_operator.naming import Component
from swg_operator.render import namespace, network, quota, rbac, services
from swg_operator.render.access_tls import check_tls_listener, generates_access_certificate
from swg_operator.render.checks import (
    acl_entry_count,
    check_categories,
    check_sandbox,
    stopped_service_spec,
)
from swg_operator.render.configmaps import (
    ConfigTooLargeError,
    WorkloadConfig,
    access_tls_certificate,
    workload_config,
)
from swg_operator.render.configmaps import (
    inspection_ca_certificate as inspection_ca_certificate_config_map,
)
from swg_operator.render.context import Lifecycle, Tenant, generates_inspection_ca
from swg_operator.render.dataplane import flat_files, render_dataplane_files
from swg_operator.render.errors import CONFIG_TOO_LARGE, RenderError
from swg_operator.render.logstore import (
    log_storage_override,
    log_volume_claim,
    logstore_deployment,
)
from swg_operator.render.signatures import (
    check_platform_signatures,
    clamav_database,
    platform_signature_files,
    platform_signatures_config_map,
    uses_freshclam,
)
from swg_operator.render.workloads import (
    antivirus_deployment,
    inspection_ca_secret_name,
    proxy_deployment,
)
from swg_operator.sizing import compute_sizing
from swg_operator.sizing_plan import SizingPlan

__all__ = [
    "Lifecycle",
    "RenderError",
    "TenantManifests",
    "effective_lifecycle",
    "generates_access_certificate",
    "generates_inspection_ca",
    "inspection_ca_secret_name",
    "render_tenant",
]


@dataclass(frozen=True)
class TenantManifests:
    namespace: str  # the tenant namespace name
    objects: tuple[dict[str, Any], ...]  # every desired object, plain dicts, in apply order
    # Rendered data-plane files by name (for `render -o DIR` and tests), and by component.
    config_files: Mapping[str, str]
    config_by_component: Mapping[Component, Mapping[str, str]]
    sizing: SizingPlan


def effective_lifecycle(lifecycle: Lifecycle, *, suspended: bool) -> Lifecycle:
    """`spec.suspended` suspends an active tenant; a cancelled tenant stays cancelled."""
    if lifecycle is Lifecycle.ACTIVE and suspended:
        return Lifecycle.SUSPENDED
    return lifecycle


def _workload_configs(
    tenant: Tenant,
    grouped: Mapping[Component, Mapping[str, str]],
    components: tuple[Component, ...],
) -> dict[Component, WorkloadConfig]:
    """Each workload's ConfigMaps; the proxy and the anti-virus always get one (their pods
    mount it), the log store only when it has files."""
    wanted: dict[Component, Mapping[str, str]] = {
        c: grouped.get(c, {}) for c in components if c is not Component.LOGSTORE
    }
    if Component.LOGSTORE in grouped:
        wanted[Component.LOGSTORE] = grouped[Component.LOGSTORE]
    try:
        return {c: workload_config(tenant, c, f) for c, f in wanted.items()}
    except ConfigTooLargeError as exc:
        raise RenderError(CONFIG_TOO_LARGE, (f"spec.urlFiltering: {exc}",)) from None


def render_tenant(
    name: str,
    spec: SecureWebGatewaySpec,
    *,
    catalogue: Catalogue,
    settings: OperatorSettings,
    capacity: Capacity,
    lifecycle: Lifecycle = Lifecycle.ACTIVE,
    inspection_ca_certificate: str | None = None,
    platform_signatures: Mapping[str, str] | None = None,
    access_certificate: str | None = None,
) -> TenantManifests:
    """Every object tenant `name` needs, in apply order.

    `capacity` holds the sizing model's constants (`sizing_io.load_capacity()` reads the packaged
    ones). `lifecycle`: SUSPENDED scales the proxy and the anti-virus to zero and keeps the log
    store; CANCELLED does the same and removes every client and internet traffic path and the
    proxy Service, keeping the log store, its volume and the admins' access for export; it
    renders even when categories have left the catalogue since (the proxy runs no replica).
    `inspection_ca_certificate`: the certificate (PEM) of the HTTPS-inspection CA the operator
    generated, published in a ConfigMap when the spec names no CA Secret of its own; the
    operator's shell generates the CA and passes only its certificate in, so rendering stays
    deterministic and never sees a key. `platform_signatures`: the `data` of the platform's
    signature ConfigMap (settings antivirus.signatureConfigMap, in the operator's namespace)
    when the settings' signature source is `configMap`: its signature files are copied into the
    tenant namespace for clamd; None when it is missing (an anti-virus tenant then cannot be
    rendered, except a cancelled one) or with the `freshclam` source (ignored).
    `access_certificate`: the TLS listener's certificate (PEM) the operator generated,
    published in a ConfigMap when the spec names no certificate Secret. Raises
    `RenderError` for what validation could not judge.
    """
    if lifecycle is Lifecycle.CANCELLED:
        spec = stopped_service_spec(spec, catalogue)
    check_categories(spec, catalogue)
    check_sandbox(spec, settings)
    check_tls_listener(spec, settings)
    storage_override = log_storage_override(spec)
    if lifecycle is not Lifecycle.CANCELLED:
        check_platform_signatures(spec, settings, platform_signatures)
    files = render_dataplane_files(
        spec, catalogue=catalogue, settings=settings, namespace=naming.tenant_namespace(name)
    )
    sizing = compute_sizing(
        endpoints=spec.sizing.endpoints,
        requests_per_second=spec.sizing.requests_per_second,
        retention_days=spec.logs.retention_days,
        antivirus_enabled=spec.antivirus.enabled,
        capacity=capacity,
        clamav_database=clamav_database(settings),
        acl_entries=acl_entry_count(spec, catalogue),
        log_volume_override=storage_override,
    )
    tenant = Tenant(
        name=name,
        spec=spec,
        settings=settings,
        sizing=sizing,
        lifecycle=effective_lifecycle(lifecycle, suspended=spec.suspended),
        namespace=naming.tenant_namespace(name),
        inspection_ca_certificate=inspection_ca_certificate,
        access_certificate=access_certificate,
        platform_signatures=MappingProxyType(
            {} if uses_freshclam(settings) else platform_signature_files(platform_signatures)
        ),
    )
    components = (
        (Component.PROXY, Component.ANTIVIRUS, Component.LOGSTORE)
        if tenant.antivirus_enabled
        else (Component.PROXY, Component.LOGSTORE)
    )
    configs = _workload_configs(tenant, files, components)

    objects: list[dict[str, Any]] = [namespace.namespace(tenant)]
    objects += namespace.service_accounts(tenant, components)
    # The log claim before the quota: a first create killed mid-request can then leave no quota
    # charge behind (a quota made afterwards counts only what exists).
    objects.append(log_volume_claim(tenant))
    objects += [quota.resource_quota(tenant), quota.limit_range(tenant)]
    objects += network.network_policies(tenant)
    objects += rbac.admin_bindings(tenant)
    for config in configs.values():
        objects += config.config_maps
    ca_certificate = inspection_ca_certificate_config_map(tenant)
    if ca_certificate is not None:
        objects.append(ca_certificate)
    listener_certificate = access_tls_certificate(tenant)
    if listener_certificate is not None:
        objects.append(listener_certificate)
    signatures = platform_signatures_config_map(tenant)
    if signatures is not None:
        objects.append(signatures)

    objects.append(services.logstore_service(tenant))
    if tenant.antivirus_enabled:
        objects.append(services.antivirus_service(tenant))
    if tenant.lifecycle is not Lifecycle.CANCELLED:
        objects.append(services.proxy_service(tenant))

    objects.append(logstore_deployment(tenant, configs.get(Component.LOGSTORE)))
    if tenant.antivirus_enabled and sizing.antivirus is not None:
        objects.append(antivirus_deployment(tenant, configs[Component.ANTIVIRUS]))
    objects.append(proxy_deployment(tenant, configs[Component.PROXY]))

    budgets = [services.disruption_budget(tenant, Component.PROXY, sizing.proxy)]
    if sizing.antivirus is not None and tenant.antivirus_enabled:
        budgets.append(services.disruption_budget(tenant, Component.ANTIVIRUS, sizing.antivirus))
    budgets.append(services.disruption_budget(tenant, Component.LOGSTORE, sizing.log_store))
    objects += [b for b in budgets if b is not None]

    return TenantManifests(
        namespace=tenant.namespace,
        objects=tuple(objects),
        config_files=MappingProxyType(flat_files(files)),
        config_by_component=MappingProxyType(
            {c: MappingProxyType(dict(f)) for c, f in files.items()}
        ),
        sizing=sizing,
    )
