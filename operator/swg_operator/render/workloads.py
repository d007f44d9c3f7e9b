"""The proxy (Squid) and anti-virus (c-icap + clamd) Deployments."""

from __future__ import annotations

from typing import Any, Final

from swg_operator import naming
from swg_operator.api import SecureWebGatewaySpec
from swg_operator.api.authentication import BIND_PASSWORD_KEY, LDAP_CA_KEY
from swg_operator.naming import Component
from swg_operator.quantities import GIB, format_bytes
from swg_operator.render.access_tls import access_tls_secret_name, proxy_ports
from swg_operator.render.configmaps import WorkloadConfig, config_digest
from swg_operator.render.context import (
    ACCESS_TLS_DIR,
    CONF_DIR,
    ICAP_PORT,
    ICAP_PORT_NAME,
    LDAP_CA_DIR,
    LDAP_SECRET_DIR,
    SHM_DIR,
    STATE_DIR,
    TLS_DIR,
    TMP_DIR,
    Tenant,
    key_pair_secret_name,
)
from swg_operator.render.pods import (
    container_security_context,
    deployment,
    empty_dir,
    exec_probes,
    mount,
    pod_spec,
    projected_config_volume,
    rolling_update,
    tcp_probes,
)
from swg_operator.render.shipper import drain_seconds, shipper_sidecars
from swg_operator.render.signatures import (
    ENTRYPOINT,
    clamd_environment,
    freshclam_sidecars,
    platform_signatures_digest,
    platform_signatures_projection,
)
from swg_operator.render.squid import SHUTDOWN_SECONDS
from swg_operator.sizing_plan import CICAP, CLAMD, SQUID, WorkloadPlan

# Endpoints are removed asynchronously: keep accepting connections this long after SIGTERM is
# due, so that no client is sent to a proxy that already closed its port.
PROXY_PRE_STOP_SECONDS: Final = 5
# Squid exits about a second after shutdown_lifetime (images/proxy/Dockerfile): margin on top.
PROXY_SHUTDOWN_MARGIN_SECONDS: Final = 5
ANTIVIRUS_GRACE_SECONDS: Final = 30
# The state emptyDirs without the log spool: the proxy's certificate cache, pid file and error
# page links; the anti-virus's signature database (the public one is about 0.4 GiB on disk, twice
# while freshclam replaces a file) and the bodies c-icap spools for scanning.
PROXY_STATE_BYTES: Final = 2 * GIB
ANTIVIRUS_STATE_BYTES: Final = 4 * GIB


def proxy_grace_seconds(*, drain: int = 0) -> int:
    """Pre-stop pause, Squid's shutdown_lifetime (the one squid.conf is rendered with) and a
    margin, then `drain` seconds for a log shipper sidecar, which is stopped after Squid."""
    return PROXY_PRE_STOP_SECONDS + SHUTDOWN_SECONDS + PROXY_SHUTDOWN_MARGIN_SECONDS + drain


def inspection_ca_secret_name(spec: SecureWebGatewaySpec) -> str | None:
    """The Secret (tls.crt, tls.key) in the tenant namespace that the proxy mounts its
    HTTPS-inspection CA from: the one the spec names, or the one the operator generates
    (`naming.inspection_ca_secret_name()`); None when inspection is off. The renderer only
    references it: the key never leaves the tenant namespace and is never rendered."""
    inspection = spec.options.https_inspection
    return key_pair_secret_name(
        inspection.enabled, inspection.ca_secret, naming.inspection_ca_secret_name()
    )


def proxy_container_ports(tenant: Tenant) -> list[dict[str, Any]]:
    return [
        {"name": name, "containerPort": port, "protocol": "TCP"}
        for name, port in proxy_ports(tenant.spec, tenant.settings)
    ]


def _replicas(tenant: Tenant, plan: WorkloadPlan) -> int:
    return plan.replicas if tenant.serving else 0


def state_size_limit(base_bytes: int, plan: WorkloadPlan) -> str:
    """sizeLimit of a pod's state emptyDir: what its daemons keep there plus the log spool the
    sizing plan reserves for a log store outage (docs/sizing.md, "Log shippers and spools").
    Not counted in the ResourceQuota, which sets no ephemeral-storage."""
    return format_bytes(base_bytes + plan.log_spool)


def _key_volume(name: str, secret: str, key: str) -> dict[str, Any]:
    """A volume of one key of Secret `secret`, as the file `key`, readable by the pod's group."""
    return {
        "name": name,
        "secret": {
            "secretName": secret,
            "defaultMode": 0o440,
            "items": [{"key": key, "path": key}],
        },
    }


def proxy_deployment(tenant: Tenant, config: WorkloadConfig) -> dict[str, Any]:
    plan = tenant.sizing.proxy
    ca_secret = inspection_ca_secret_name(tenant.spec)
    mounts = [
        mount("config", CONF_DIR, read_only=True),
        mount("state", STATE_DIR),
        mount("shm", SHM_DIR),
        mount("tmp", TMP_DIR),
    ]
    volumes = [
        projected_config_volume("config", config.names),
        empty_dir("state", size_limit=state_size_limit(PROXY_STATE_BYTES, plan)),
        empty_dir("shm", size_limit="64Mi", memory=True),
        empty_dir("tmp", size_limit="256Mi"),
    ]
    if ca_secret is not None:
        mounts.insert(1, mount("inspection-ca", TLS_DIR, read_only=True))
        volumes.insert(
            1,
            {"name": "inspection-ca", "secret": {"secretName": ca_secret, "defaultMode": 0o440}},
        )
    ldap = tenant.spec.authentication.ldap
    if ldap is not None and ldap.ca_secret is not None:
        # The directory's CA certificates: only their key, the file the LDAP helpers trust.
        mounts.insert(1, mount("ldap-ca", LDAP_CA_DIR, read_only=True))
        volumes.insert(1, _key_volume("ldap-ca", ldap.ca_secret.name, LDAP_CA_KEY))
    if ldap is not None:
        # The directory's bind password: only its key, as a file Squid's LDAP helpers read.
        mounts.insert(1, mount("ldap-bind", LDAP_SECRET_DIR, read_only=True))
        volumes.insert(1, _key_volume("ldap-bind", ldap.bind_secret.name, BIND_PASSWORD_KEY))
    access_secret = access_tls_secret_name(tenant.spec)
    if access_secret is not None:
        mounts.insert(1, mount("access-tls", ACCESS_TLS_DIR, read_only=True))
        volumes.insert(
            1,
            {"name": "access-tls", "secret": {"secretName": access_secret, "defaultMode": 0o440}},
        )
    ports = proxy_container_ports(tenant)
    squid = {
        "name": SQUID,
        "image": tenant.settings.images.proxy,
        "imagePullPolicy": tenant.settings.images.pull_policy,
        "ports": ports,
        "resources": tenant.container_resources(plan, SQUID),
        "securityContext": container_security_context(),
        # A TCP probe on the first port Squid opens: the plain one, or the TLS listener alone.
        **tcp_probes(ports[0]["name"], startup_seconds=60),
        "lifecycle": {"preStop": {"sleep": {"seconds": PROXY_PRE_STOP_SECONDS}}},
        "volumeMounts": mounts,
    }
    sidecars = shipper_sidecars(tenant, Component.PROXY, plan)
    pod = pod_spec(
        tenant,
        Component.PROXY,
        init_containers=sidecars,
        containers=[squid],
        volumes=volumes,
        grace_seconds=proxy_grace_seconds(drain=drain_seconds(sidecars)),
        spread=True,
    )
    references = [f"secret/{ca_secret}"] if ca_secret else []
    if ldap is not None:
        references.append(f"secret/{ldap.bind_secret.name}")
        if ldap.ca_secret is not None:
            references.append(f"secret/{ldap.ca_secret.name}")
    if access_secret is not None:
        references.append(f"secret/{access_secret}")
        if tenant.access_certificate is not None:
            # A new generated certificate rolls the proxy pods: Squid reads it when it starts.
            references.append(f"listener/{naming.digest(tenant.access_certificate)}")
    if ca_secret is not None and tenant.inspection_ca_certificate is not None:
        # A new generated CA (its Secret was deleted and made again) rolls the proxy pods:
        # Squid reads the CA only when it starts.
        references.append(f"certificate/{naming.digest(tenant.inspection_ca_certificate)}")
    return deployment(
        tenant,
        Component.PROXY,
        replicas=_replicas(tenant, plan),
        strategy=rolling_update(plan.max_surge, plan.max_unavailable),
        pod=pod,
        digest=config_digest(config.files, references=references),
    )


def _custom_signatures(tenant: Tenant) -> tuple[str, ...]:
    ref = tenant.spec.antivirus.custom_signatures
    return (ref.name,) if ref is not None else ()


def antivirus_deployment(tenant: Tenant, config: WorkloadConfig) -> dict[str, Any]:
    plan = tenant.sizing.antivirus
    if plan is None:
        raise ValueError("antivirus_deployment: the sizing plan has no anti-virus workload")
    image = tenant.settings.images.antivirus
    pull = tenant.settings.images.pull_policy
    mounts = [
        mount("config", CONF_DIR, read_only=True),
        mount("state", STATE_DIR),
        mount("tmp", TMP_DIR),
    ]
    signatures = _custom_signatures(tenant)
    clamd_env = clamd_environment(tenant)
    c_icap = {
        "name": CICAP,
        "image": image,
        "imagePullPolicy": pull,
        "args": ["c-icap"],
        "ports": [{"name": ICAP_PORT_NAME, "containerPort": ICAP_PORT, "protocol": "TCP"}],
        "resources": tenant.container_resources(plan, CICAP),
        "securityContext": container_security_context(),
        # c-icap starts only once clamd answers a ping (the entrypoint waits up to 120 s). An
        # open port is not enough: a c-icap without its scan engine passes everything, so the
        # probes ask c-icap whether its service announces an engine.
        **exec_probes([ENTRYPOINT, "c-icap-ready"], startup_seconds=180),
        "volumeMounts": mounts,
    }
    clamd = {
        "name": CLAMD,
        "image": image,
        "imagePullPolicy": pull,
        "args": ["clamd"],
        **({"env": clamd_env} if clamd_env else {}),
        "resources": tenant.container_resources(plan, CLAMD),
        "securityContext": container_security_context(),
        # clamd listens on a unix socket only; clamdscan asks it for a PONG. Loading a full
        # public signature database takes minutes on a small node.
        **exec_probes(
            ["clamdscan", "--ping", "1", f"--config-file={CONF_DIR}/clamd.conf"],
            startup_seconds=300,
        ),
        "volumeMounts": mounts,
    }
    shippers = shipper_sidecars(tenant, Component.ANTIVIRUS, plan)
    config_volume = projected_config_volume("config", (*config.names, *signatures))
    config_volume["projected"]["sources"] += platform_signatures_projection(tenant)
    pod = pod_spec(
        tenant,
        Component.ANTIVIRUS,
        # The shipper first; freshclam's startup probe then holds the daemons back until the
        # public database is complete.
        init_containers=[*shippers, *freshclam_sidecars(tenant, plan)],
        containers=[c_icap, clamd],
        volumes=[
            config_volume,
            # Shared by the containers: clamd's socket, spooled bodies, the signature database,
            # the anti-virus log spool.
            empty_dir("state", size_limit=state_size_limit(ANTIVIRUS_STATE_BYTES, plan)),
            empty_dir("tmp", size_limit="256Mi"),
        ],
        grace_seconds=ANTIVIRUS_GRACE_SECONDS + drain_seconds(shippers),
        spread=True,
    )
    references = [f"configmap/{name}" for name in signatures]
    if (platform := platform_signatures_digest(tenant)) is not None:
        references.append(f"platform-signatures/{platform}")
    return deployment(
        tenant,
        Component.ANTIVIRUS,
        replicas=_replicas(tenant, plan),
        strategy=rolling_update(plan.max_surge, plan.max_unavailable),
        pod=pod,
        digest=config_digest(config.files, references=references),
    )
