"""The labels every object of a tenant carries, and the selector that finds them for pruning.

`app.kubernetes.io/managed-by=swg-operator` plus `swg.dev/tenant=<tenant>` is the ownership mark:
the operator lists by exactly these two labels and deletes what the desired state no longer
contains. Pod selectors use the tenant and component labels, which never change after creation
(a Deployment's selector is immutable).

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from swg_operator.naming import Component, label_value, tenant_label_value

MANAGED_BY_KEY: Final = "app.kubernetes.io/managed-by"
MANAGED_BY: Final = "swg-operator"
TENANT_KEY: Final = "swg.dev/tenant"
SERVICE_CODE_KEY: Final = "swg.dev/service-code"
NAME_KEY: Final = "app.kubernetes.io/name"
COMPONENT_KEY: Final = "app.kubernetes.io/component"
PART_OF_KEY: Final = "app.kubernetes.io/part-of"
APP_NAME: Final = "secure-web-gateway"

# Annotation on pod templates: digest of the config text the pods read, so a change rolls them.
CONFIG_DIGEST_ANNOTATION: Final = "swg.dev/config-digest"


def label_of(obj: Mapping[str, Any], key: str) -> str:
    """The value of label `key` on a manifest; "" when it has none."""
    return str(((obj.get("metadata") or {}).get("labels") or {}).get(key) or "")


def selector_for(tenant: str) -> dict[str, str]:
    """The label selector of everything the operator owns for `tenant` (prune by this)."""
    return {MANAGED_BY_KEY: MANAGED_BY, TENANT_KEY: tenant_label_value(tenant)}


def selector_string(tenant: str) -> str:
    """`selector_for` as a `labelSelector` query string (`key=value,key=value`)."""
    return ",".join(f"{key}={value}" for key, value in selector_for(tenant).items())


def tenant_labels(tenant: str, *, service_code: str) -> dict[str, str]:
    """Labels of every object of the tenant that is not a pod or workload part."""
    return {
        **selector_for(tenant),
        NAME_KEY: APP_NAME,
        PART_OF_KEY: APP_NAME,
        SERVICE_CODE_KEY: label_value(service_code),
    }


def component_selector(tenant: str, component: Component) -> dict[str, str]:
    """Pod selector of one component (immutable on Deployments: keep it this small)."""
    return {TENANT_KEY: tenant_label_value(tenant), COMPONENT_KEY: component.value}


def component_labels(tenant: str, component: Component, *, service_code: str) -> dict[str, str]:
    """Labels of a component's objects and pods."""
    return {**tenant_labels(tenant, service_code=service_code), COMPONENT_KEY: component.value}
