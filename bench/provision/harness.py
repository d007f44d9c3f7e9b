"""What both phases of a provisioning benchmark run share: options, tenants, control planes.

A run is the floor (`bench.provision.floor`), then the operator (`bench.provision.operator_run`),
each on a fresh control plane. Both clients run as ServiceAccounts bound to cluster-admin, so
API Priority and Fairness treats them alike; the audit log attributes every request to one of
them.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from e2e.cluster import ControlPlane, service_account_kubeconfig
from e2e.operator_process import tenant_manifest

from bench.localcluster import BENCH_NAMESPACE, BenchControlPlane
from bench.provision.audit import MUTATING
from bench.provision.measure import AuditTail

REPO_ROOT = Path(__file__).resolve().parents[2]
OPERATOR_NS = "swg-system"
SWG_PATH = "/apis/swg.dev/v1alpha1/securewebgateways"
DEPLOYMENTS_PATH = "/apis/apps/v1/deployments"
MANAGED = "app.kubernetes.io/managed-by=swg-operator"
READY_COMPONENTS = ("proxy", "antivirus")  # the Deployments the operator's Ready waits for


@dataclass(frozen=True)
class Options:
    tenants: int
    state_dir: Path
    concurrency: int = 16
    idle_seconds: float = 180.0
    quiet_seconds: float = 15.0
    settle_max_seconds: float = 300.0
    ready_timeout: float = 3600.0
    floor: bool = True
    operator_args: tuple[str, ...] = ()
    profile: Path | None = None  # py-spy binary: record the operator while it provisions
    profile_rate: int = 20  # samples per second (py-spy runs beside, --nonblocking)
    memtrace: bool = False  # run the operator under tracemalloc (slower; for the memory profile)


def tenant_names(count: int) -> list[str]:
    return [f"bench-{i:04d}" for i in range(count)]


def bench_tenant(name: str) -> dict[str, Any]:
    """The e2e tier's tenant: 50 endpoints, 20 requests/s (2 proxies, 2 anti-virus, 1 store)."""
    return tenant_manifest(name)


def log(message: str) -> None:
    """A progress line on stdout, stamped with the wall-clock time."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def fresh_plane(opts: Options) -> BenchControlPlane:
    plane = BenchControlPlane(opts.state_dir, tenants=opts.tenants)
    plane.stop()  # whatever ran in this state dir before: start() then starts from scratch
    plane.start()
    return plane


def account_kubeconfig(plane: ControlPlane, name: str) -> Path:
    """A ServiceAccount of the benchmark bound to cluster-admin, as a kubeconfig."""
    plane.apply(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": BENCH_NAMESPACE}},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": f"swg-bench-{name}"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "cluster-admin",
            },
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": BENCH_NAMESPACE}],
        },
    )
    return service_account_kubeconfig(
        plane,
        namespace=BENCH_NAMESPACE,
        name=name,
        path=plane.state_dir / f"{name}.kubeconfig",
        duration="12h",
    )


def plane_settings(plane: BenchControlPlane) -> dict[str, Any]:
    """The control plane's flags and Nodes that differ from `make up`'s (for the result)."""
    tuning = plane.tuning
    return {
        "etcd": tuning.etcd_args(),
        "kube-apiserver": tuning.apiserver_args(),
        "kube-controller-manager": tuning.controller_manager_args(),
        "kube-scheduler": tuning.client_args(),
        "kwokNodes": len(plane.nodes),
        "podsPerNode": int(plane.nodes[0].pods),
    }


def user_of(account: str) -> str:
    return f"system:serviceaccount:{BENCH_NAMESPACE}:{account}"


async def wait_quiet(
    tail: AuditTail, *, user: str, since: float, quiet: float, limit: float
) -> tuple[float, bool]:
    """Wait until `user` made no mutating request for `quiet` seconds; (when it last wrote,
    whether it went quiet before `limit` seconds)."""
    deadline = time.time() + limit
    last = since
    while time.time() < deadline:
        await asyncio.sleep(min(quiet / 3, 5.0))
        for r in tail.poll():
            if r.user == user and r.verb in MUTATING:
                last = max(last, r.at)
        if time.time() - last >= quiet:
            return last, True
    return last, False
