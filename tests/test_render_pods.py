"""The pods a tenant renders to: hardening, mounts, placement, sizing (quota, LimitRange, volume
sizes, the requests percent) and the log shipper sidecars."""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Any

import pytest

from render_support import (
    EXAMPLE_NAMES,
    example_spec,
    find,
    minimal_spec,
    minimal_tenant,
    objects_of,
    pod_templates,
    render,
    render_example,
)
from swg_operator.api import OperatorSettings
from swg_operator.labels import CONFIG_DIGEST_ANNOTATION
from swg_operator.naming import Component
from swg_operator.quantities import MIB
from swg_operator.quantities import parse_bytes as parse_memory_quantity
from swg_operator.quantities import parse_cpu as parse_cpu_quantity
from swg_operator.render.configmaps import (
    workload_config,
)
from swg_operator.render.context import Tenant
from swg_operator.render.resources import container_resources
from swg_operator.render.shipper import SHIPPER, SHIPPER_DRAIN_SECONDS
from swg_operator.render.squid import SHUTDOWN_SECONDS
from swg_operator.render.workloads import (
    PROXY_PRE_STOP_SECONDS,
    PROXY_SHUTDOWN_MARGIN_SECONDS,
    proxy_deployment,
)
from swg_operator.sizing_plan import Resources


@pytest.mark.parametrize("example", EXAMPLE_NAMES)
def test_no_service_account_token_is_mounted(example: str) -> None:
    manifests = render_example(example)
    accounts = objects_of(manifests, "ServiceAccount")
    assert "default" in [a["metadata"]["name"] for a in accounts]
    assert all(a["automountServiceAccountToken"] is False for a in accounts)
    for template in pod_templates(manifests):
        assert template["spec"]["automountServiceAccountToken"] is False


@pytest.mark.parametrize("example", EXAMPLE_NAMES)
def test_every_container_is_hardened_and_sized(example: str) -> None:
    manifests = render_example(example)
    plans = {
        "proxy": manifests.sizing.proxy,
        "antivirus": manifests.sizing.antivirus,
        "logstore": manifests.sizing.log_store,
    }
    for deployment in objects_of(manifests, "Deployment"):
        plan = plans[deployment["metadata"]["name"]]
        assert plan is not None
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        sidecars = pod.get("initContainers", [])
        assert {c["name"] for c in [*pod["containers"], *sidecars]} == set(plan.containers)
        for container in [*pod["containers"], *pod.get("initContainers", [])]:
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False
            assert security["readOnlyRootFilesystem"] is True
            assert security["capabilities"] == {"drop": ["ALL"]}
            assert container["resources"] == container_resources(plan.containers[container["name"]])
            if container not in sidecars:
                assert {"startupProbe", "readinessProbe", "livenessProbe"} <= container.keys()
            mounted = {m["mountPath"] for m in container["volumeMounts"]}
            assert "/tmp" in mounted
        assert CONFIG_DIGEST_ANNOTATION in deployment["spec"]["template"]["metadata"]["annotations"]


def test_proxy_gets_memory_backed_shm_and_a_grace_period_after_squid_shutdown() -> None:
    manifests = render_example("minimal")
    pod = find(manifests, "Deployment", "proxy")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["shm"]["emptyDir"]["medium"] == "Memory"
    assert {"name": "shm", "mountPath": "/dev/shm"} in pod["containers"][0]["volumeMounts"]
    # squid.conf sets the shutdown_lifetime the grace period is computed from.
    assert (
        f"\nshutdown_lifetime {SHUTDOWN_SECONDS} seconds\n" in manifests.config_files["squid.conf"]
    )
    assert pod["terminationGracePeriodSeconds"] == (
        PROXY_PRE_STOP_SECONDS
        + SHUTDOWN_SECONDS
        + PROXY_SHUTDOWN_MARGIN_SECONDS
        + SHIPPER_DRAIN_SECONDS
    )


def test_antivirus_pod_shares_one_state_directory_between_its_daemons() -> None:
    manifests = render_example("full")
    pod = find(manifests, "Deployment", "antivirus")["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["containers"]] == ["c-icap", "clamd"]
    for container in pod["containers"]:
        assert {"name": "state", "mountPath": "/var/lib/swg"} in container["volumeMounts"]
    config = next(v for v in pod["volumes"] if v["name"] == "config")
    sources = [s["configMap"]["name"] for s in config["projected"]["sources"]]
    assert sources == ["antivirus-config", "example-corp-signatures"]


def test_region_pins_every_pod_and_replicas_spread_over_nodes_and_zones() -> None:
    manifests = render_example("full")
    for template in pod_templates(manifests):
        affinity = template["spec"]["affinity"]
        terms = affinity["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        assert terms["nodeSelectorTerms"] == [
            {
                "matchExpressions": [
                    {
                        "key": "topology.kubernetes.io/region",
                        "operator": "In",
                        "values": ["region-local"],
                    }
                ]
            }
        ]
    proxy = find(manifests, "Deployment", "proxy")["spec"]["template"]["spec"]["affinity"]
    preferred = proxy["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert {t["podAffinityTerm"]["topologyKey"] for t in preferred} == {
        "kubernetes.io/hostname",
        "topology.kubernetes.io/zone",
    }


def test_without_region_no_node_affinity() -> None:
    for template in pod_templates(render_example("minimal")):
        assert "nodeAffinity" not in template["spec"].get("affinity", {})


def test_log_volume_size_is_computed_or_declared() -> None:
    auto = render_example("minimal")
    claim = find(auto, "PersistentVolumeClaim", "logstore-data")["spec"]
    assert parse_memory_quantity(claim["resources"]["requests"]["storage"]) == (
        auto.sizing.log_volume
    )
    assert "storageClassName" not in claim

    full = render_example("full")
    claim = find(full, "PersistentVolumeClaim", "logstore-data")["spec"]
    assert claim["resources"]["requests"]["storage"] == "200Gi"
    assert "storageClassName" not in claim  # the example uses the cluster's default class

    named = render("acme", minimal_spec(logs={"storage": {"storageClassName": "local-path"}}))
    claim = find(named, "PersistentVolumeClaim", "logstore-data")["spec"]
    assert claim["storageClassName"] == "local-path"


def test_storage_quota_admits_a_declared_volume_larger_than_computed() -> None:
    manifests = render("big-logs", minimal_spec(logs={"storage": {"size": "50Ti"}}))
    hard = find(manifests, "ResourceQuota", "tenant-quota")["spec"]["hard"]
    assert parse_memory_quantity(hard["requests.storage"]) >= parse_memory_quantity("50Ti")


def _quantity(resource: str, value: str) -> int:
    return parse_cpu_quantity(value) if "cpu" in resource else parse_memory_quantity(value)


@pytest.mark.parametrize("example", EXAMPLE_NAMES)
def test_quota_covers_a_rolling_update_of_every_deployment(example: str) -> None:
    """Every Deployment at its replicas plus surge, with as many old pods still terminating,
    fits the ResourceQuota (computed from the rendered objects, not the sizing plan)."""
    manifests = render_example(example)
    hard = find(manifests, "ResourceQuota", "tenant-quota")["spec"]["hard"]
    used: Counter[str] = Counter()
    for deployment in objects_of(manifests, "Deployment"):
        spec = deployment["spec"]
        rolling = spec["strategy"].get("rollingUpdate", {"maxSurge": 1})
        pods = spec["replicas"] + 2 * rolling["maxSurge"]
        used["pods"] += pods
        pod = spec["template"]["spec"]
        # Native sidecars (restartPolicy Always) run beside the containers: their requests add.
        sidecars = [c for c in pod.get("initContainers", []) if c.get("restartPolicy") == "Always"]
        for container in [*pod["containers"], *sidecars]:
            for kind in ("requests", "limits"):
                for resource, value in container["resources"][kind].items():
                    used[f"{kind}.{resource}"] += pods * _quantity(resource, value)
    for key, amount in used.items():
        limit = int(hard[key]) if key == "pods" else _quantity(key, hard[key])
        assert amount <= limit, key


@pytest.mark.parametrize("example", EXAMPLE_NAMES)
def test_limit_range_admits_every_container(example: str) -> None:
    manifests = render_example(example)
    limits = find(manifests, "LimitRange", "tenant-limits")["spec"]["limits"][0]
    for template in pod_templates(manifests):
        pod = template["spec"]
        for container in [*pod["containers"], *pod.get("initContainers", [])]:
            for resource, value in container["resources"]["limits"].items():
                assert _quantity(resource, value) <= _quantity(resource, limits["max"][resource])


def test_https_inspection_mounts_the_named_or_generated_ca() -> None:
    def ca_volume(spec: dict[str, Any]) -> Any:
        pod = find(render("tls", spec), "Deployment", "proxy")["spec"]["template"]["spec"]
        return next((v for v in pod["volumes"] if v["name"] == "inspection-ca"), None)

    assert ca_volume(minimal_spec()) is None
    generated = ca_volume(minimal_spec(options={"httpsInspection": {"enabled": True}}))
    assert generated["secret"]["secretName"] == "https-inspection-ca"
    named = ca_volume(
        minimal_spec(options={"httpsInspection": {"enabled": True, "caSecret": {"name": "my-ca"}}})
    )
    assert named["secret"]["secretName"] == "my-ca"


def test_log_store_gets_its_tenant_and_retention() -> None:
    logstore = find(render_example("full"), "Deployment", "logstore")["spec"]["template"]["spec"]
    (container,) = logstore["containers"]
    assert container["args"] == ["serve"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["SWG_TENANT"] == "example-corp"
    assert env["SWG_SERVICE_CODE"] == "SWG-0001234"
    assert env["SWG_LOG_RETENTION_DAYS"] == "60"
    assert env["SWG_STATE_DIR"] == "/var/lib/swg"


def test_a_sized_shipper_runs_as_a_native_sidecar_that_drains_last() -> None:
    """The sizing plan decides: a `shipper` container in a workload's plan becomes a native
    sidecar with those resources (and so counts in the quota like any container)."""
    sized = minimal_tenant()
    shipper = Resources(
        cpu_request=50, cpu_limit=100, memory_request=32 * MIB, memory_limit=48 * MIB
    )

    def with_proxy_containers(containers: dict[str, Resources]) -> Tenant:
        plan = dataclasses.replace(sized.sizing.proxy, containers=containers)
        return dataclasses.replace(sized, sizing=dataclasses.replace(sized.sizing, proxy=plan))

    squid_only = {k: v for k, v in sized.sizing.proxy.containers.items() if k != SHIPPER}
    base = with_proxy_containers(squid_only)
    tenant = with_proxy_containers({**squid_only, SHIPPER: shipper})
    config = workload_config(tenant, Component.PROXY, {"squid.conf": "shutdown_lifetime 10\n"})

    without = proxy_deployment(base, config)["spec"]["template"]["spec"]
    assert "initContainers" not in without
    pod = proxy_deployment(tenant, config)["spec"]["template"]["spec"]
    (sidecar,) = pod["initContainers"]
    assert sidecar["restartPolicy"] == "Always"
    assert sidecar["args"] == ["ship"]
    assert sidecar["resources"] == container_resources(shipper)
    env = {e["name"]: e["value"] for e in sidecar["env"]}
    assert env["SWG_LOGSTORE_URL"] == "http://logstore:5140"
    assert env["SWG_SHIP_SOURCES"] == "squid-access"
    assert {"name": "state", "mountPath": "/var/lib/swg"} in sidecar["volumeMounts"]
    assert [c["name"] for c in pod["containers"]] == ["squid"]
    assert pod["terminationGracePeriodSeconds"] == without["terminationGracePeriodSeconds"] + 10


def test_proxy_and_antivirus_pods_ship_their_logs_through_sized_sidecars() -> None:
    """The sizing plan gives every proxy and anti-virus pod a shipper; the pods run it as a
    native sidecar with the plan's resources, and their state emptyDir holds the plan's log
    spool on top of what the daemons keep there."""
    manifests = render_example("minimal")
    templates = {
        d["metadata"]["name"]: d["spec"]["template"]["spec"]
        for d in objects_of(manifests, "Deployment")
    }
    for component, plan, base in (
        ("proxy", manifests.sizing.proxy, 2048 * MIB),
        ("antivirus", manifests.sizing.antivirus, 4096 * MIB),
    ):
        assert plan is not None
        pod = templates[component]
        shipper = next(c for c in pod["initContainers"] if c["name"] == SHIPPER)
        assert shipper["restartPolicy"] == "Always"
        assert shipper["resources"] == container_resources(plan.containers[SHIPPER])
        state = next(v for v in pod["volumes"] if v["name"] == "state")
        assert plan.log_spool > 0
        assert parse_memory_quantity(state["emptyDir"]["sizeLimit"]) == base + plan.log_spool
    assert "initContainers" not in templates["logstore"]


@pytest.mark.parametrize("percent", [1, 10, 55, 100])
def test_requests_percent_scales_requests_and_keeps_limits_and_quota(percent: int) -> None:
    """The platform's resourceRequestsPercent lowers what every container (and the LimitRange
    default) requests; limits, the quota and the sizing plan stay as sized."""
    name, spec = example_spec("full")
    sized = render(name, spec)
    scaled = render(name, spec, settings=OperatorSettings(resource_requests_percent=percent))
    assert scaled.sizing == sized.sizing
    assert find(scaled, "ResourceQuota", "tenant-quota") == find(
        sized, "ResourceQuota", "tenant-quota"
    )
    containers = 0
    for before, after in zip(pod_templates(sized), pod_templates(scaled), strict=True):
        pairs = zip(
            [*before["spec"]["containers"], *before["spec"].get("initContainers", [])],
            [*after["spec"]["containers"], *after["spec"].get("initContainers", [])],
            strict=True,
        )
        for old, new in pairs:
            if "resources" not in old:
                continue
            containers += 1
            assert new["resources"]["limits"] == old["resources"]["limits"]
            for resource, value in old["resources"]["requests"].items():
                full = _quantity(resource, value)
                want = max(1, -(-full * percent // 100))
                assert _quantity(resource, new["resources"]["requests"][resource]) == want
    assert containers >= 6
    default = find(scaled, "LimitRange", "tenant-limits")["spec"]["limits"][0]
    sized_default = find(sized, "LimitRange", "tenant-limits")["spec"]["limits"][0]
    assert default["default"] == sized_default["default"]
    cpu = _quantity("cpu", sized_default["defaultRequest"]["cpu"])
    assert _quantity("cpu", default["defaultRequest"]["cpu"]) == max(1, -(-cpu * percent // 100))


def test_requests_percent_outside_1_to_100_is_refused() -> None:
    for percent in (0, 101):
        with pytest.raises(ValueError, match="resource_requests_percent"):
            OperatorSettings(resource_requests_percent=percent)
