"""Where each tenant's clamd gets its signatures: the platform's source (OperatorSettings
`antivirus.signatureSource`) and the tenant's own custom signatures (docs/antivirus.md).

* `freshclam` (default): a `freshclam` native sidecar in every anti-virus pod (the anti-virus
  image, `swg-antivirus-entrypoint freshclam`) downloads the public ClamAV database from the
  settings' mirror into the database directory on the pod's state emptyDir and keeps it current;
  clamd reloads it (`NotifyClamd`, and `SelfCheck` as a backstop). The sidecar's startup probe
  succeeds only once a complete database is there, and the kubelet starts the pod's containers
  only after its native sidecars have started, so clamd never starts without the public
  database; clamd's entrypoint waits for it too (`SWG_CLAMAV_REQUIRED`), for the restarts the
  gate does not cover. The anti-virus pods never reach the internet: with no mirror in the
  cluster (settings mirrorCIDRs/mirrorPods empty), freshclam goes through the tenant's own proxy
  (`HTTPProxyServer`), whose squid.conf lets the anti-virus pods reach the mirror's names and
  ports and nothing else (`proxied_mirrors`); with a mirror in the cluster, a NetworkPolicy
  egress to that mirror only.
* `configMap`: the platform's ConfigMap of signature files (`signatureConfigMap`, in the
  operator's namespace) is copied into each tenant namespace; the operator's loop reads it and
  passes its `data` to `render_tenant(platform_signatures=...)`. The copy is projected beside the
  configuration (keys prefixed `platform-`, so they cannot collide with the tenant's own files)
  and installed by clamd's entrypoint like custom signatures. No public database, no egress.

Pure: the settings and the platform's files in, objects and config values out.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

from swg_operator import naming
from swg_operator.api import OperatorSettings, SecureWebGatewaySpec
from swg_operator.api.settings import Freshclam
from swg_operator.naming import Component
from swg_operator.render.context import CONF_DIR, STATE_DIR, TMP_DIR, Tenant, manifest
from swg_operator.render.errors import SIGNATURES_UNAVAILABLE, RenderError
from swg_operator.render.freshclam import FreshclamConfig
from swg_operator.render.pods import container_security_context, mount
from swg_operator.sizing_plan import FRESHCLAM, ClamavDatabase, WorkloadPlan

FRESHCLAM_SOURCE: Final = "freshclam"
# The signature files the anti-virus image installs from its config directory
# (images/antivirus/entrypoint.sh, install_signatures).
SIGNATURE_EXTENSIONS: Final = (
    ".ndb",
    ".hsb",
    ".hdb",
    ".ldb",
    ".cdb",
    ".ign2",
    ".fp",
    ".sfp",
    ".msb",
    ".mdb",
    ".yar",
    ".yara",
)
# Where the platform's files land in the anti-virus pod's config directory.
PLATFORM_SIGNATURE_PREFIX: Final = "platform-"
# The databases clamd must find before it starts when freshclam supplies them (bytecode is not
# downloaded: clamd runs with `Bytecode no`).
PUBLIC_DATABASES: Final = ("main", "daily")
# The first download of the public database (about 250 MB) on a slow link.
FRESHCLAM_STARTUP_SECONDS: Final = 900
ENTRYPOINT: Final = "/usr/local/bin/swg-antivirus-entrypoint"
DEFAULT_MIRROR_PORT: Final = 443
_SCHEME_PORTS: Final = {"http": 80, "https": 443}


def uses_freshclam(settings: OperatorSettings) -> bool:
    return settings.antivirus.signature_source == FRESHCLAM_SOURCE


def clamav_database(settings: OperatorSettings) -> ClamavDatabase:
    """What clamd loads, which the sizing model needs: the public database with freshclam,
    only the platform's and the tenant's own files with the configMap source."""
    return ClamavDatabase.FULL if uses_freshclam(settings) else ClamavDatabase.CUSTOM


def mirror_ports(freshclam: Freshclam) -> tuple[int, ...]:
    """TCP ports freshclam connects to: the settings' mirrorPorts, else those of the private
    mirrors' URLs, else HTTPS for the public mirror."""
    if freshclam.mirror_ports:
        return tuple(sorted(set(freshclam.mirror_ports)))
    if not freshclam.private_mirrors:
        return (DEFAULT_MIRROR_PORT,)
    ports = set()
    for url in freshclam.private_mirrors:
        parts = urlsplit(url)
        ports.add(parts.port or _SCHEME_PORTS[parts.scheme])
    return tuple(sorted(ports))


def mirror_in_cluster(freshclam: Freshclam) -> bool:
    """The settings place the mirror in the cluster (mirrorCIDRs or mirrorPods): the anti-virus
    pods reach it directly. Otherwise freshclam goes through the tenant's proxy."""
    return bool(freshclam.mirror_cidrs) or freshclam.mirror_pods is not None


def mirror_through_proxy(settings: OperatorSettings) -> bool:
    """freshclam reaches its mirror through the tenant's own proxy: the freshclam source with
    no mirror in the cluster (the public databaseMirror, or privateMirrors outside)."""
    return uses_freshclam(settings) and not mirror_in_cluster(settings.antivirus.freshclam)


def proxy_admits_antivirus(settings: OperatorSettings) -> bool:
    """The tenant's proxy admits its anti-virus pods (for the mirror only): freshclam goes
    through it and the cluster's networks are declared, which is how Squid tells those pods
    (they have no fixed address). Without cluster networks freshclam cannot update: fail
    closed."""
    return mirror_through_proxy(settings) and bool(settings.cluster_cidrs)


@dataclass(frozen=True, order=True)
class MirrorEndpoint:
    """One place freshclam downloads from: what the proxy lets the anti-virus pods reach."""

    scheme: str  # https (a CONNECT tunnel) | http (a GET through the proxy)
    host: str
    port: int


def proxied_mirrors(freshclam: Freshclam) -> tuple[MirrorEndpoint, ...]:
    """The mirror endpoints freshclam asks: those of privateMirrors' URLs, else databaseMirror
    on HTTPS. Sorted, without duplicates."""
    if not freshclam.private_mirrors:
        return (MirrorEndpoint("https", freshclam.database_mirror, DEFAULT_MIRROR_PORT),)
    endpoints = set()
    for url in freshclam.private_mirrors:
        parts = urlsplit(url)
        assert parts.hostname is not None  # MIRROR_URL_PATTERN
        endpoints.add(
            MirrorEndpoint(parts.scheme, parts.hostname, parts.port or _SCHEME_PORTS[parts.scheme])
        )
    return tuple(sorted(endpoints))


def freshclam_config(
    spec: SecureWebGatewaySpec, settings: OperatorSettings, proxy_host: str
) -> FreshclamConfig:
    """freshclam's config values (settings' strings are pattern-constrained). `proxy_host`: the
    tenant's proxy Service by its full name, which freshclam goes through when the mirror is not
    in the cluster (`mirror_through_proxy`)."""
    freshclam = settings.antivirus.freshclam
    return FreshclamConfig(
        service_code=spec.service_code,
        database_mirror=freshclam.database_mirror,
        private_mirrors=tuple(freshclam.private_mirrors),
        checks_per_day=freshclam.checks_per_day,
        proxy_host=proxy_host if mirror_through_proxy(settings) else None,
        proxy_port=settings.proxy_port,
    )


def platform_signature_files(platform_signatures: Mapping[str, str] | None) -> dict[str, str]:
    """The signature files among the platform ConfigMap's keys (anything else, a README for
    example, is not copied)."""
    return {
        key: text
        for key, text in sorted((platform_signatures or {}).items())
        if key.endswith(SIGNATURE_EXTENSIONS)
    }


def check_platform_signatures(
    spec: SecureWebGatewaySpec,
    settings: OperatorSettings,
    platform_signatures: Mapping[str, str] | None,
) -> None:
    """With the configMap source an anti-virus tenant needs at least one platform signature
    file: clamd refuses to start with an empty database."""
    if not spec.antivirus.enabled or uses_freshclam(settings):
        return
    if platform_signature_files(platform_signatures):
        return
    where = f"{settings.operator_namespace}/{settings.antivirus.signature_config_map}"
    raise RenderError(
        SIGNATURES_UNAVAILABLE,
        (
            f"spec.antivirus: the platform's signature ConfigMap {where} "
            f"(settings antivirus.signatureConfigMap) is missing or holds no signature file "
            f"({', '.join('*' + e for e in SIGNATURE_EXTENSIONS[:3])}, ...); clamd cannot start "
            f"without signatures",
        ),
    )


def platform_signatures_config_map(tenant: Tenant) -> dict[str, Any] | None:
    """The tenant namespace's copy of the platform's signature files (configMap source)."""
    if not tenant.antivirus_enabled or not tenant.platform_signatures:
        return None
    return manifest(
        "v1",
        "ConfigMap",
        tenant.metadata(naming.platform_signatures_name(), component=Component.ANTIVIRUS),
        data=dict(tenant.platform_signatures),
    )


def platform_signatures_projection(tenant: Tenant) -> list[dict[str, Any]]:
    """Projected-volume sources putting the copy's files into the config directory as
    `platform-<key>`."""
    if not tenant.platform_signatures:
        return []
    items = [
        {"key": key, "path": f"{PLATFORM_SIGNATURE_PREFIX}{key}"}
        for key in sorted(tenant.platform_signatures)
    ]
    return [
        {
            "configMap": {
                "name": naming.platform_signatures_name(),
                "optional": False,
                "items": items,
            }
        }
    ]


def platform_signatures_digest(tenant: Tenant) -> str | None:
    """A digest of the platform's files: a new signature set rolls the anti-virus pods (the
    entrypoint installs them when clamd starts)."""
    if not tenant.platform_signatures:
        return None
    hashed = hashlib.sha256()
    for key, text in sorted(tenant.platform_signatures.items()):
        hashed.update(key.encode("utf-8") + b"\0" + text.encode("utf-8") + b"\0")
    return hashed.hexdigest()[:16]


def clamd_environment(tenant: Tenant) -> list[dict[str, str]]:
    """clamd's entrypoint waits for the public database when freshclam supplies it."""
    if not uses_freshclam(tenant.settings):
        return []
    return [{"name": "SWG_CLAMAV_REQUIRED", "value": " ".join(PUBLIC_DATABASES)}]


def freshclam_sidecars(tenant: Tenant, plan: WorkloadPlan) -> list[dict[str, Any]]:
    """The freshclam native sidecar when the plan sizes one (the public database)."""
    if FRESHCLAM not in plan.containers:
        return []
    ready = [ENTRYPOINT, "database-ready"]
    return [
        {
            "name": FRESHCLAM,
            "image": tenant.settings.images.antivirus,
            "imagePullPolicy": tenant.settings.images.pull_policy,
            "restartPolicy": "Always",
            "args": ["freshclam"],
            "env": clamd_environment(tenant),
            "resources": tenant.container_resources(plan, FRESHCLAM),
            "securityContext": container_security_context(),
            # The kubelet starts the daemons only once this succeeds: a complete database.
            "startupProbe": {
                "exec": {"command": ready},
                "periodSeconds": 10,
                "timeoutSeconds": 5,
                "failureThreshold": -(-FRESHCLAM_STARTUP_SECONDS // 10),
            },
            "volumeMounts": [
                mount("config", CONF_DIR, read_only=True),
                mount("state", STATE_DIR),
                mount("tmp", TMP_DIR),
            ],
        }
    ]
