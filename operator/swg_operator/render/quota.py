"""ResourceQuota and LimitRange of the tenant namespace, from the sizing plan."""

from __future__ import annotations

from typing import Any

from swg_operator import naming
from swg_operator.render.context import Tenant, manifest
from swg_operator.render.logstore import log_volume_bytes
from swg_operator.sizing import memory_quantity


def resource_quota(tenant: Tenant) -> dict[str, Any]:
    """The plan's quota, which covers a rolling update of every workload. An explicit
    `logs.storage.size` larger than the computed log volume raises the storage quota to it, or
    the log volume's claim would be refused."""
    hard = dict(tenant.sizing.quota.hard())
    storage = max(tenant.sizing.quota.requests_storage, log_volume_bytes(tenant))
    hard["requests.storage"] = memory_quantity(storage)
    return manifest(
        "v1",
        "ResourceQuota",
        tenant.metadata(naming.resource_quota_name()),
        spec={"hard": hard},
    )


def limit_range(tenant: Tenant) -> dict[str, Any]:
    return manifest(
        "v1",
        "LimitRange",
        tenant.metadata(naming.limit_range_name()),
        spec=tenant.sizing.limit_range.spec(
            requests_percent=tenant.settings.resource_requests_percent
        ),
    )
