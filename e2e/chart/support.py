"""What the chart's e2e modules share: the release under test, the operator run with the
chart's ServiceAccount, tenant manifests and probes of their status, Argo CD's health check, and
`kubectl auth can-i` as someone."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from e2e import operator_process
from e2e.cluster import Cluster, wait_until
from e2e.operator_process import condition, get_tenant
from swg_operator.api import GROUP, PLURAL
from swg_operator.naming import tenant_reader_cluster_role_name

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART = REPO_ROOT / "charts" / "swg-operator"
HEALTH_LUA = REPO_ROOT / "deploy/argocd/resource_customizations/swg.dev/SecureWebGateway/health.lua"
CRD_NAME = f"{PLURAL}.{GROUP}"
TENANT_READER = tenant_reader_cluster_role_name()
READY_TIMEOUT = 180.0
PURGE_TIMEOUT = 180.0


@dataclass
class Release:
    cluster: Cluster
    name: str
    namespace: str
    install_output: str
    owned: bool  # installed by the package's fixture (uninstalled at the end)

    @property
    def fullname(self) -> str:
        return self.name if "swg-operator" in self.name else f"{self.name}-swg-operator"

    def helm(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.cluster.helm(*args, "--namespace", self.namespace, check=check)

    def settings_json(self) -> str:
        config_map = self.cluster.kubectl_json(
            "get", "configmap", f"{self.fullname}-settings", "-n", self.namespace
        )
        return str(config_map["data"]["settings.json"])


@dataclass
class ChartOperator:
    """The operator with the chart's rights: a local process (`process`, its `log`) on the local
    control plane, the release's own pod elsewhere; `sa_cluster` is the cluster as its
    ServiceAccount."""

    process: subprocess.Popen[bytes] | None
    log: Path | None
    sa_cluster: Cluster

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log and self.log.exists() else ""


def tenant_manifest(name: str, **spec: Any) -> dict[str, Any]:
    """The e2e tier's tenant with an admin and no wait before its purge (a deleted tenant goes
    at once), `spec` laid over it."""
    defaults: dict[str, Any] = {
        "admins": [{"kind": "User", "name": "admin@example.com"}],
        "cancellation": {"purgeAfterDays": 0},
    }
    return operator_process.tenant_manifest(name, **{**defaults, **spec})


def condition_status(obj: dict[str, Any] | None, kind: str) -> str | None:
    found = condition(obj, kind).get("status")
    return None if found is None else str(found)


def with_condition(cluster: Cluster, name: str, kind: str) -> dict[str, Any] | None:
    """The tenant when its condition `kind` is True, else None (a probe for `wait_until`)."""
    obj = get_tenant(cluster, name)
    return obj if obj is not None and condition_status(obj, kind) == "True" else None


def lua_health(obj: dict[str, Any]) -> dict[str, str]:
    from lupa import lua51

    lua = lua51.LuaRuntime(unpack_returned_tuples=True)
    lua.globals().obj = lua.table_from(obj, recursive=True)
    result = lua.execute(HEALTH_LUA.read_text())
    return {"status": str(result["status"]), "message": str(result["message"])}


def argo_health(obj: dict[str, Any]) -> dict[str, str]:
    """What Argo CD shows: an object being deleted is "Progressing: Pending deletion" before any
    health check runs (gitops-engine); otherwise health.lua decides."""
    if obj["metadata"].get("deletionTimestamp"):
        return {"status": "Progressing", "message": "Pending deletion"}
    return lua_health(obj)


def capture(obj: dict[str, Any], case: str) -> None:
    """With $SWG_ARGOCD_CAPTURE_DIR set, keep the live object for Argo CD's testdata."""
    target = os.environ.get("SWG_ARGOCD_CAPTURE_DIR")
    if not target:
        return
    keep = {
        k: v
        for k, v in obj["metadata"].items()
        if k in ("name", "generation", "deletionTimestamp", "finalizers", "creationTimestamp")
    }
    document = {
        "apiVersion": obj["apiVersion"],
        "kind": obj["kind"],
        "metadata": keep,
        "spec": obj["spec"],
        "status": obj.get("status"),
    }
    Path(target).mkdir(parents=True, exist_ok=True)
    (Path(target) / f"{case}.yaml").write_text(yaml.safe_dump(document, sort_keys=False))


def admin_tenant(name: str, admin: str) -> dict[str, Any]:
    tenant = tenant_manifest(name)
    tenant["spec"]["admins"] = [{"kind": "User", "name": admin}]
    return tenant


def wait_ready(cluster: Cluster, name: str, operator: ChartOperator) -> dict[str, Any]:
    found: dict[str, Any] = wait_until(
        lambda: with_condition(cluster, name, "Ready"),
        timeout=READY_TIMEOUT,
        what=f"{name} Ready (operator log:\n{operator.log_text()[-3000:]})",
    )
    return found


def proxy_can_i(who: Cluster, namespace: str) -> str:
    return can(who, "get", "services/logstore:http", "--subresource=proxy", "-n", namespace)


def can(who: Cluster, *args: str) -> str:
    return who.kubectl("auth", "can-i", *args, check=False).stdout.strip()


def delete_tenants(cluster: Cluster, *names: str) -> None:
    """Delete the tenants and wait until the operator has purged each, so that nothing a test
    made is still being torn down (and logging) when the next one starts."""
    for name in names:
        cluster.kubectl("delete", "swg", name, "--wait=false", check=False)
    for name in names:

        def gone(name: str = name) -> bool:
            return get_tenant(cluster, name) is None

        wait_until(gone, timeout=PURGE_TIMEOUT, what=f"{name} purged")


def log_without_refusals(operator: ChartOperator, log_start: int) -> str | None:
    """The operator's log from `log_start` on, asserted free of authorisation refusals (the
    chart's RBAC sufficed); None when the release's own pod runs the operator (no log here).

    A 403 for writing into a namespace "because it is being terminated" is no refusal of rights:
    the API server answers so to anyone while a purged tenant's namespace goes away, and a
    reconcile racing the purge meets it."""
    if operator.process is None:
        return None
    log = operator.log_text()[log_start:]
    refused = [
        line
        for line in log.splitlines()
        if "Forbidden" in line and "because it is being terminated" not in line
    ]
    assert not refused, "\n".join(refused[-20:])
    return log
