"""Fixtures of the e2e tier: a real cluster, fresh namespaces, ServiceAccount credentials.

Public API (keep it small; operator tests build on it):

``cluster`` (session) -> ``e2e.cluster.Cluster``
    The cluster under test. By default a local control plane (etcd, kube-apiserver,
    kube-controller-manager, kube-scheduler, kwok with three Nodes in two regions) started once
    per session in ``.local/e2e-clusters/<pytest pid>`` (so concurrent sessions never share one;
    override with $SWG_E2E_CLUSTER_DIR) and stopped at the end, its logs kept until a later
    session tidies up; it is then an ``e2e.cluster.ControlPlane`` and ``cluster.local`` is True.
    With $SWG_E2E_KUBECONFIG set, that existing cluster (kind, ...) is used; nothing starts.
    Use ``cluster.kubectl(*args, input=None, check=True)``, ``cluster.kubectl_json(*args)``,
    ``cluster.apply(*manifests, namespace=None)`` (server-side apply), ``cluster.helm(*args)``,
    ``cluster.kubeconfig``, ``cluster.kubectl_path``, ``cluster.helm_path``.

``make_namespace(prefix=None, *, labels=None) -> str``
    Creates a namespace with a unique name (the test's name by default), waits for its
    ``default`` ServiceAccount (pods are refused before it exists) and deletes it after the test.

``namespace`` -> str
    ``make_namespace()`` for tests that need just one.

``as_service_account(namespace, name, *, create=True) -> Cluster``
    The same cluster seen as ServiceAccount ``namespace/name`` (created unless create=False),
    through a token from the TokenRequest API in a kubeconfig of its own (``.kubeconfig``):
    for least-privilege checks.

Operator tests (the operator as a process, ``e2e.operator_process.OperatorProcess``, logging to
``.local/logs/e2e/<test name>.log``):

``prepared`` (module) -> ``Cluster``
    The cluster with what the operator needs installed once per module: the CRD, the tenant
    admins' ClusterRole, the ``swg-system`` namespace and the sample URL catalogue.

``new_operator(*args, clock_offset=None) -> OperatorProcess``
    Starts ``swg-operator run`` with ``args`` (under ``faketime`` with a ``clock_offset``) once
    the test's previous one, if any, has stopped; every one is stopped after the test.

``operator`` -> ``OperatorProcess``
    ``new_operator()`` for tests that need one operator with the default arguments.

``tenant_name`` -> str
    A unique tenant name after the test's; the tenant is dropped after the test without its
    purge (``forget_tenant``).

Plain helpers for anything else: ``e2e.cluster.unique_name(prefix)`` and
``e2e.cluster.wait_until(probe, timeout=..., what=...)`` (poll with a deadline, no sleeps).
Mark tests that use these with ``pytest.mark.cluster``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest
from devtools.binaries import find_tool

from e2e.cluster import (
    Binaries,
    BinariesMissingError,
    Cluster,
    ControlPlane,
    ControlPlaneError,
    service_account_kubeconfig,
    unique_name,
    wait_until,
)
from e2e.operator_process import LOG_DIR, OperatorProcess, forget_tenant, install_prerequisites

REPO_ROOT = Path(__file__).resolve().parents[1]
NAMESPACE_READY_TIMEOUT = 60.0


def _external_cluster(kubeconfig: Path) -> Cluster:
    bins = Binaries.from_cache()
    kubectl = find_tool(bins.kubectl, "kubectl")
    if kubectl is None:
        pytest.fail("no kubectl: run `make setup` or put kubectl on PATH", pytrace=False)
    external = Cluster(kubeconfig, kubectl=kubectl, helm=find_tool(bins.helm, "helm"))
    ready = external.kubectl("get", "--raw", "/readyz", check=False)
    if ready.stdout.strip() != "ok":
        pytest.fail(f"cluster of {kubeconfig} is not ready: {ready.stderr}", pytrace=False)
    return external


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _session_state_dir() -> Path:
    """A state dir of this session's own; those of finished sessions are stopped and removed."""
    configured = os.environ.get("SWG_E2E_CLUSTER_DIR")
    if configured:
        return Path(configured)
    root = REPO_ROOT / ".local" / "e2e-clusters"
    if root.is_dir():
        for old in root.iterdir():
            if old.name.isdigit() and not _pid_alive(int(old.name)):
                with contextlib.suppress(ControlPlaneError):
                    ControlPlane(old).stop()
                shutil.rmtree(old, ignore_errors=True)
    return root / str(os.getpid())


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    """The cluster under test (see the module docstring)."""
    external = os.environ.get("SWG_E2E_KUBECONFIG")
    if external:
        yield _external_cluster(Path(external).expanduser().resolve())
        return
    plane = ControlPlane(_session_state_dir())
    try:
        plane.start()
    except (BinariesMissingError, ControlPlaneError) as err:
        pytest.fail(f"local control plane did not start: {err}", pytrace=False)
    try:
        yield plane
    finally:
        plane.stop()
        shutil.rmtree(plane.work_dir, ignore_errors=True)  # certificates and etcd data


@pytest.fixture
def make_namespace(
    cluster: Cluster, request: pytest.FixtureRequest
) -> Iterator[Callable[..., str]]:
    """Factory of fresh namespaces, deleted (without waiting) after the test."""
    created: list[str] = []

    def make(prefix: str | None = None, *, labels: Mapping[str, str] | None = None) -> str:
        name = unique_name(prefix or request.node.name.removeprefix("test_").replace("_", "-"))
        cluster.apply(
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": name, "labels": {"swg.dev/e2e": "true", **(labels or {})}},
            }
        )
        created.append(name)
        wait_until(
            lambda: (
                cluster.kubectl(
                    "get", "serviceaccount", "default", "-n", name, check=False
                ).returncode
                == 0
            ),
            timeout=NAMESPACE_READY_TIMEOUT,
            what=f"ServiceAccount {name}/default",
        )
        return name

    yield make
    for name in created:
        cluster.kubectl(
            "delete", "namespace", name, "--ignore-not-found", "--wait=false", check=False
        )


@pytest.fixture
def namespace(make_namespace: Callable[..., str]) -> str:
    """One fresh namespace for the test."""
    return make_namespace()


@pytest.fixture
def as_service_account(cluster: Cluster, tmp_path: Path) -> Callable[..., Cluster]:
    """Factory: the cluster seen through a ServiceAccount token (see the module docstring)."""

    def make(namespace: str, name: str, *, create: bool = True) -> Cluster:
        path = tmp_path / f"{namespace}.{name}.kubeconfig"
        kubeconfig = service_account_kubeconfig(
            cluster, namespace=namespace, name=name, path=path, create=create
        )
        return cluster.with_kubeconfig(kubeconfig)

    return make


@pytest.fixture(scope="module")
def prepared(cluster: Cluster) -> Cluster:
    """The cluster with the operator's prerequisites (see the module docstring)."""
    install_prerequisites(cluster)
    return cluster


@pytest.fixture
def new_operator(
    prepared: Cluster, request: pytest.FixtureRequest
) -> Iterator[Callable[..., OperatorProcess]]:
    """Factory of operator processes for this test, one at a time (all stopped at the end)."""
    started: list[OperatorProcess] = []

    def make(*args: str, clock_offset: str | None = None) -> OperatorProcess:
        for other in started:
            other.stop()
        process = OperatorProcess(
            prepared,
            log_path=LOG_DIR / f"{request.node.name}.log",
            args=args,
            clock_offset=clock_offset,
        )
        started.append(process)
        return process.start()

    yield make
    for process in started:
        process.stop()


@pytest.fixture
def operator(new_operator: Callable[..., OperatorProcess]) -> OperatorProcess:
    """One operator process with the default arguments for this test."""
    return new_operator()


@pytest.fixture
def tenant_name(prepared: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A unique tenant name after the test's, the tenant forgotten after the test."""
    name = unique_name(request.node.name.removeprefix("test_")[:20])
    yield name
    forget_tenant(prepared, name)


@pytest.fixture(scope="session")
def node_cluster() -> Iterator[ControlPlane]:
    """The control plane of `.local` with its real node (the node tier; root): the one
    `make cluster-up` starts, or started here (and stopped at the end) when it is not running.
    $SWG_E2E_NODE_DIR picks another state dir; $SWG_E2E_KEEP_NODE=1 leaves it running."""
    if os.geteuid() != 0:
        pytest.skip("the real node needs root")
    state_dir = Path(os.environ.get("SWG_E2E_NODE_DIR") or REPO_ROOT / ".local")
    plane = ControlPlane(state_dir, real_node=True)
    started = plane.start()
    try:
        yield plane
    finally:
        if started and not os.environ.get("SWG_E2E_KEEP_NODE"):
            plane.stop()
