"""The log store: one replica owning one volume that holds the tenant's logs.

It runs in every lifecycle state, cancelled included, so that the customer's admins can export
their logs until the purge. A Deployment with a separate PersistentVolumeClaim (not a
StatefulSet): the claim can grow with the sizing (a StatefulSet's claim template is immutable)
and it is an object the operator lists, keeps and purges explicitly.

Image contract (the logstore image, `python -m swg_logstore serve|ship`): writes under
$SWG_STATE_DIR (the volume), serves downloads over HTTP on `LOGSTORE_HTTP_PORT` and takes
records from the shippers on `LOGSTORE_INGEST_PORT`; tenant, service code and retention come from
the environment. Timestamps are stored in UTC.
"""

from __future__ import annotations

from typing import Any, Final

from swg_operator import naming
from swg_operator.api import SecureWebGatewaySpec
from swg_operator.naming import Component
from swg_operator.quantities import GIB, TIB, format_bytes, parse_bytes
from swg_operator.render.configmaps import WorkloadConfig, config_digest
from swg_operator.render.context import (
    CONF_DIR,
    LOGSTORE_HTTP_PORT,
    LOGSTORE_HTTP_PORT_NAME,
    LOGSTORE_INGEST_PORT,
    LOGSTORE_INGEST_PORT_NAME,
    LOGSTORE_METRICS_PORT,
    LOGSTORE_METRICS_PORT_NAME,
    STATE_DIR,
    TMP_DIR,
    Tenant,
    manifest,
)
from swg_operator.render.errors import INVALID_LOG_STORAGE, RenderError
from swg_operator.render.pods import (
    container_security_context,
    deployment,
    empty_dir,
    mount,
    pod_spec,
    projected_config_volume,
    tcp_probes,
)
from swg_operator.sizing_plan import LOGSTORE

LOGSTORE_GRACE_SECONDS: Final = 30


MIN_LOG_VOLUME_BYTES: Final = GIB
MAX_LOG_VOLUME_BYTES: Final = 1024 * TIB  # 1 PiB


def log_storage_override(spec: SecureWebGatewaySpec) -> int | None:
    """`logs.storage.size` in bytes, the sizing model's storage override; None for auto. A
    declared size must be one a storage class can provision."""
    size = spec.logs.storage.size
    if size == "auto":
        return None
    requested = parse_bytes(size)
    if not MIN_LOG_VOLUME_BYTES <= requested <= MAX_LOG_VOLUME_BYTES:
        raise RenderError(
            INVALID_LOG_STORAGE,
            (f"spec.logs.storage.size: {size} is outside 1Gi..1024Ti; use auto or a size within",),
        )
    return requested


def log_volume_claim(tenant: Tenant) -> dict[str, Any]:
    """The log volume. With a region pinned, its PersistentVolume is placed where the log store
    pod is scheduled, provided the storage class binds WaitForFirstConsumer or its
    allowedTopologies are the region; reconcile/region.py reports any other class (Stalled)."""
    spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "volumeMode": "Filesystem",
        "resources": {"requests": {"storage": format_bytes(tenant.sizing.log_volume)}},
    }
    storage_class = tenant.spec.logs.storage.storage_class_name
    if storage_class:
        spec["storageClassName"] = storage_class
    return manifest(
        "v1",
        "PersistentVolumeClaim",
        tenant.metadata(naming.log_volume_claim_name(), component=Component.LOGSTORE),
        spec=spec,
    )


def _environment(tenant: Tenant) -> list[dict[str, str]]:
    logs = tenant.spec.logs
    return [
        {"name": "SWG_TENANT", "value": tenant.name},
        {"name": "SWG_SERVICE_CODE", "value": tenant.spec.service_code},
        {"name": "SWG_STATE_DIR", "value": STATE_DIR},
        {"name": "SWG_LOG_RETENTION_DAYS", "value": str(logs.retention_days)},
        # Days of the log store end at the tenant's local midnight.
        {"name": "SWG_LOG_TIME_ZONE", "value": logs.time_zone},
        {"name": "SWG_HTTP_PORT", "value": str(LOGSTORE_HTTP_PORT)},
        {"name": "SWG_INGEST_PORT", "value": str(LOGSTORE_INGEST_PORT)},
        {"name": "SWG_METRICS_PORT", "value": str(LOGSTORE_METRICS_PORT)},
        # Stored timestamps are UTC whatever the node's zone (only day boundaries are local).
        {"name": "TZ", "value": "UTC"},
        # A legal hold stops retention from expiring any day (set only while held).
        *(
            [{"name": "SWG_LOG_LEGAL_HOLD", "value": "true"}]
            if tenant.spec.cancellation.legal_hold
            else []
        ),
    ]


def logstore_deployment(tenant: Tenant, config: WorkloadConfig | None) -> dict[str, Any]:
    plan = tenant.sizing.log_store
    mounts = [mount("logs", STATE_DIR), mount("tmp", TMP_DIR)]
    volumes: list[dict[str, Any]] = [
        {
            "name": "logs",
            "persistentVolumeClaim": {"claimName": naming.log_volume_claim_name()},
        },
        empty_dir("tmp", size_limit="256Mi"),
    ]
    if config is not None:
        mounts.insert(0, mount("config", CONF_DIR, read_only=True))
        volumes.insert(0, projected_config_volume("config", config.names))
    container = {
        "name": LOGSTORE,
        "image": tenant.settings.images.logstore,
        "imagePullPolicy": tenant.settings.images.pull_policy,
        "args": ["serve"],
        "ports": [
            {
                "name": LOGSTORE_HTTP_PORT_NAME,
                "containerPort": LOGSTORE_HTTP_PORT,
                "protocol": "TCP",
            },
            {
                "name": LOGSTORE_INGEST_PORT_NAME,
                "containerPort": LOGSTORE_INGEST_PORT,
                "protocol": "TCP",
            },
            {
                "name": LOGSTORE_METRICS_PORT_NAME,
                "containerPort": LOGSTORE_METRICS_PORT,
                "protocol": "TCP",
            },
        ],
        "env": _environment(tenant),
        "resources": tenant.container_resources(plan, LOGSTORE),
        "securityContext": container_security_context(),
        **tcp_probes(LOGSTORE_HTTP_PORT_NAME, startup_seconds=120),
        "volumeMounts": mounts,
    }
    pod = pod_spec(
        tenant,
        Component.LOGSTORE,
        containers=[container],
        volumes=volumes,
        grace_seconds=LOGSTORE_GRACE_SECONDS,
        spread=False,
    )
    return deployment(
        tenant,
        Component.LOGSTORE,
        # Kept running in every lifecycle state: the logs stay exportable until the purge.
        replicas=plan.replicas,
        # One writer on a ReadWriteOnce volume: the old pod must release it first.
        strategy={"type": "Recreate"},
        pod=pod,
        digest=config_digest(config.files if config is not None else {}),
    )
