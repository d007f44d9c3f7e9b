"""ResourceQuota and LimitRange of the tenant namespace, from the sizing plan."""

from __future__ import annotations

from typing import Any

from swg_operator import naming
from swg_operator.render.context import Tenant, manifest
from swg_operator.render.resources import limit_range_spec, quota_hard


def resource_quota(tenant: Tenant) -> dict[str, Any]:
    """The plan's quota, which covers a rolling update of every workload and the log volume
    (an explicit `logs.storage.size` is a sizing input: the storage quota covers it)."""
    return manifest(
        "v1",
        "ResourceQuota",
        tenant.metadata(naming.resource_quota_name()),
        spec={"hard": quota_hard(tenant.sizing.quota)},
    )


def limit_range(tenant: Tenant) -> dict[str, Any]:
    return manifest(
        "v1",
        "LimitRange",
        tenant.metadata(naming.limit_range_name()),
        spec=limit_range_spec(
            tenant.sizing.limit_range, requests_percent=tenant.settings.resource_requests_percent
        ),
    )
