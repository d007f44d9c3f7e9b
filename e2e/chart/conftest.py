"""Fixtures of the chart's e2e modules: the chart's own control plane, its release, and the
operator run as a local process with the chart's ServiceAccount token."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from devtools.processes import free_port

from e2e.chart.support import CHART, CRD_NAME, REPO_ROOT, TENANT_READER, ChartOperator, Release
from e2e.cluster import (
    Cluster,
    ControlPlane,
    ControlPlaneError,
    service_account_kubeconfig,
    unique_name,
    wait_until,
)


@pytest.fixture(scope="package")
def chart_cluster(cluster: Cluster) -> Iterator[Cluster]:
    """A control plane for this package alone when the session's is local; else the cluster."""
    if not cluster.local:
        yield cluster
        return
    plane = ControlPlane(REPO_ROOT / ".local" / "e2e-chart")
    try:
        plane.start()
    except ControlPlaneError as err:
        pytest.fail(f"the chart's control plane did not start: {err}", pytrace=False)
    try:
        yield plane
    finally:
        plane.stop()


def _adopt(cluster: Cluster, release: str, namespace: str) -> None:
    """A CRD applied before the chart (kubectl apply --server-side -f crds/), and the tenant
    admins' ClusterRole as `make up` applies it, are adopted by the release, the way
    docs/install.md tells users to."""
    for kind, name in (("crd", CRD_NAME), ("clusterrole", TENANT_READER)):
        found = cluster.kubectl("get", kind, name, "--ignore-not-found", "-o", "name").stdout
        if not found.strip():
            continue
        cluster.kubectl("label", kind, name, "app.kubernetes.io/managed-by=Helm", "--overwrite")
        cluster.kubectl(
            "annotate",
            kind,
            name,
            f"meta.helm.sh/release-name={release}",
            f"meta.helm.sh/release-namespace={namespace}",
            "--overwrite",
        )


@pytest.fixture(scope="package")
def release(chart_cluster: Cluster) -> Iterator[Release]:
    """The chart installed into a namespace enforcing Pod Security `restricted`, as NOTES.txt's
    reader would: `helm install` and nothing else. On an external cluster where
    hack/e2e-kind.sh installed the chart ($SWG_E2E_CHART_RELEASE), that release: a second one
    would compete for the CRD and the tenants."""
    named = os.environ.get("SWG_E2E_CHART_RELEASE")
    if named and not chart_cluster.local:
        namespace, _, name = named.partition("/")
        notes = chart_cluster.helm("status", name, "--namespace", namespace).stdout
        yield Release(chart_cluster, name, namespace, notes, owned=False)
        return
    name = unique_name("swg")
    namespace = unique_name("swg-system")
    chart_cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": namespace,
                "labels": {
                    "pod-security.kubernetes.io/enforce": "restricted",
                    "pod-security.kubernetes.io/warn": "restricted",
                },
            },
        }
    )
    _adopt(chart_cluster, name, namespace)
    result = chart_cluster.helm(
        "install", name, str(CHART), "--namespace", namespace, "--wait", "--timeout", "3m"
    )
    installed = Release(chart_cluster, name, namespace, result.stdout, owned=True)
    try:
        yield installed
    finally:
        chart_cluster.helm("uninstall", name, "--namespace", namespace, "--wait", check=False)
        chart_cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


@pytest.fixture(scope="package")
def operator_release(chart_cluster: Cluster, release: Release) -> Release:
    """The release whose operator reconciles tenants: this package's on the local control plane
    (the operator then runs as a local process), the one hack/e2e-kind.sh installed elsewhere."""
    if chart_cluster.local or not release.owned:
        return release
    pytest.skip("external cluster without $SWG_E2E_CHART_RELEASE: no operator image to run")


@pytest.fixture(scope="package")
def operator(
    operator_release: Release, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ChartOperator]:
    """`swg-operator run` with a kubeconfig holding a token of the chart's ServiceAccount."""
    rel = operator_release
    work = tmp_path_factory.mktemp("chart-operator")
    sa_kubeconfig = service_account_kubeconfig(
        rel.cluster,
        namespace=rel.namespace,
        name=rel.fullname,
        path=work / "operator.kubeconfig",
        create=False,
    )
    sa_cluster = rel.cluster.with_kubeconfig(sa_kubeconfig)
    if not rel.owned:  # the release's own pod runs the operator
        yield ChartOperator(None, None, sa_cluster)
        return
    settings = work / "settings.json"
    settings.write_text(rel.settings_json())
    port = free_port()
    log = work / "operator.log"
    command = [
        str(Path(sys.executable).with_name("swg-operator")),
        "run",
        f"--settings={settings}",
        f"--metrics-address=127.0.0.1:{port}",
        f"--lease={rel.fullname}",  # the chart's Lease, as its Deployment passes it
        "--resync-seconds=60",
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_")}
    env.update(KUBECONFIG=str(sa_kubeconfig), SWG_OPERATOR_NAMESPACE=rel.namespace)
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    running = ChartOperator(process, log, sa_cluster)

    def healthy() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"the operator exited {process.returncode}:\n{running.log_text()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    try:
        wait_until(healthy, timeout=60, what="the operator's /healthz")
        yield running
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --- the chart on the server -------------------------------------------------------------------
