"""Every object the renderer emits for the example tenants is accepted by a real API server:
schema validation, PodSecurity `restricted` (enforced, and with no warning), ResourceQuota and
LimitRange admission.

The Namespace, ServiceAccounts, ResourceQuota and LimitRange are created for real (admission of
pods and claims needs them to exist, and the quota needs its status computed); everything else is
applied with `--dry-run=server`, and each Deployment's pod template is dry-run as a Pod, which is
what PodSecurity enforcement, quota and limit range judge.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from e2e.cluster import Cluster, unique_name, wait_until
from e2e.cluster.client import to_yaml_stream
from swg_operator.api import OperatorSettings, parse_spec
from swg_operator.catalogue_io import load_blacklist_directory
from swg_operator.render import Lifecycle, TenantManifests, render_tenant
from swg_operator.sizing_io import load_capacity

pytestmark = pytest.mark.cluster

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples" / "tenants"
CATALOGUE = REPO / "examples" / "catalogue"
CREATED_FOR_REAL = ("Namespace", "ServiceAccount", "ResourceQuota", "LimitRange")
TIMEOUT = 60.0


def render_example(example: str, tenant: str, lifecycle: Lifecycle) -> TenantManifests:
    document = yaml.safe_load((EXAMPLES / f"{example}.yaml").read_text())
    return render_tenant(
        tenant,
        parse_spec(document["spec"]),
        catalogue=load_blacklist_directory(CATALOGUE),
        settings=OperatorSettings(),
        capacity=load_capacity(),
        lifecycle=lifecycle,
    )


def pod_from_template(deployment: dict[str, Any]) -> dict[str, Any]:
    template = deployment["spec"]["template"]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{deployment['metadata']['name']}-dry-run",
            "namespace": deployment["metadata"]["namespace"],
            "labels": template["metadata"]["labels"],
            "annotations": template["metadata"].get("annotations", {}),
        },
        "spec": template["spec"],
    }


def assert_no_warning(result: Any, what: str) -> None:
    assert "Warning" not in result.stderr, f"{what}: {result.stderr}"
    assert "warning" not in result.stderr.lower(), f"{what}: {result.stderr}"


def quota_computed(cluster: Cluster, namespace: str, name: str) -> bool:
    quota = cluster.kubectl_json("get", "resourcequota", name, "-n", namespace)
    return bool(quota.get("status", {}).get("hard"))


@pytest.fixture
def tenant_name(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A tenant name no other test uses; its namespace is deleted afterwards."""
    callspec = getattr(request.node, "callspec", None)
    name = unique_name(f"dry-{callspec.id if callspec else 'control'}")
    yield name
    cluster.kubectl(
        "delete", "namespace", f"swg-{name}", "--ignore-not-found", "--wait=false", check=False
    )


@pytest.mark.parametrize("lifecycle", list(Lifecycle), ids=[s.value.lower() for s in Lifecycle])
@pytest.mark.parametrize("example", ["minimal", "full"])
def test_every_rendered_object_is_admitted_without_warnings(
    cluster: Cluster, tenant_name: str, example: str, lifecycle: Lifecycle
) -> None:
    manifests = render_example(example, tenant_name, lifecycle)
    real = [o for o in manifests.objects if o["kind"] in CREATED_FOR_REAL]
    rest = [o for o in manifests.objects if o["kind"] not in CREATED_FOR_REAL]
    assert real[0]["kind"] == "Namespace"

    created = cluster.apply(*real)
    assert_no_warning(created, "namespace, service accounts, quota, limit range")
    quota = next(o for o in real if o["kind"] == "ResourceQuota")["metadata"]["name"]
    wait_until(
        lambda: quota_computed(cluster, manifests.namespace, quota),
        timeout=TIMEOUT,
        what=f"status of ResourceQuota {manifests.namespace}/{quota}",
    )

    dry_run = cluster.kubectl(
        "apply",
        "--server-side",
        "--field-manager=swg-operator",
        "--dry-run=server",
        "-f",
        "-",
        input=to_yaml_stream(rest),
    )
    assert_no_warning(dry_run, "dry-run of the tenant's objects")
    assert dry_run.stdout.count("serverside-applied") == len(rest), dry_run.stdout

    deployments = [o for o in manifests.objects if o["kind"] == "Deployment"]
    assert deployments
    for deployment in deployments:
        pod = pod_from_template(deployment)
        result = cluster.kubectl(
            "create", "--dry-run=server", "-o", "yaml", "-f", "-", input=to_yaml_stream([pod])
        )
        assert_no_warning(result, f"pod of Deployment {deployment['metadata']['name']}")
        admitted = yaml.safe_load(result.stdout)
        # LimitRange admission left the explicit resources alone (they are within its bounds).
        for container, rendered in zip(
            admitted["spec"]["containers"], pod["spec"]["containers"], strict=True
        ):
            assert container["resources"] == rendered["resources"]


def test_the_checks_above_can_fail(cluster: Cluster, tenant_name: str) -> None:
    """Control: the same namespace refuses a proxy pod that drops one restricted setting, and
    warns about such a Deployment, so the absence of refusals and warnings above means
    something."""
    manifests = render_example("minimal", tenant_name, Lifecycle.ACTIVE)
    cluster.apply(*[o for o in manifests.objects if o["kind"] in CREATED_FOR_REAL])
    deployment = next(
        o
        for o in manifests.objects
        if o["kind"] == "Deployment" and o["metadata"]["name"] == "proxy"
    )
    del deployment["spec"]["template"]["spec"]["securityContext"]["seccompProfile"]

    refused = cluster.kubectl(
        "create",
        "--dry-run=server",
        "-f",
        "-",
        input=to_yaml_stream([pod_from_template(deployment)]),
        check=False,
    )
    assert refused.returncode != 0
    assert "violates PodSecurity" in refused.stderr

    warned = cluster.kubectl(
        "apply", "--server-side", "--dry-run=server", "-f", "-", input=to_yaml_stream([deployment])
    )
    assert "Warning" in warned.stderr
