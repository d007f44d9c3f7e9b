"""`helm uninstall` removes the operator and keeps the CRD. The package's modules run in name
order, so this one, which ends the release, runs last."""

from __future__ import annotations

import pytest

from e2e.chart.support import CRD_NAME, Release
from e2e.cluster import Cluster

pytestmark = pytest.mark.cluster


def test_uninstall_keeps_the_crd_and_the_tenants(chart_cluster: Cluster, release: Release) -> None:
    """Runs last in the package: `helm uninstall` removes the operator and keeps the CRD."""
    if not release.owned:
        pytest.skip("the release belongs to hack/e2e-kind.sh")
    release.helm("uninstall", release.name, "--wait")
    assert chart_cluster.kubectl_json("get", "crd", CRD_NAME)
    gone = chart_cluster.kubectl(
        "get", "clusterrole", release.fullname, "--ignore-not-found", "-o", "name"
    ).stdout
    assert not gone.strip()
