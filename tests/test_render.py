"""What a tenant renders to: the object set, hardening, sizing, lifecycle and the refusals."""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Any

import pytest

from render_support import (
    EXAMPLE_NAMES,
    example_document,
    example_spec,
    find,
    has,
    minimal_spec,
    objects_of,
    pod_templates,
    render,
    render_example,
)
from swg_operator.api import OperatorSettings, parse_spec
from swg_operator.labels import CONFIG_DIGEST_ANNOTATION, selector_for
from swg_operator.naming import Component
from swg_operator.quantities import MIB
from swg_operator.quantities import parse_bytes as parse_memory_quantity
from swg_operator.quantities import parse_cpu as parse_cpu_quantity
from swg_operator.render import Lifecycle, RenderError, TenantManifests, effective_lifecycle, rbac
from swg_operator.render.checks import category_references, wire_category_references
from swg_operator.render.configmaps import (
    CONFIG_MAP_BUDGET_BYTES,
    ConfigTooLargeError,
    config_digest,
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

MINIMAL_OBJECTS = [
    ("Namespace", "swg-minimal"),
    ("ServiceAccount", "default"),
    ("ServiceAccount", "proxy"),
    ("ServiceAccount", "antivirus"),
    ("ServiceAccount", "logstore"),
    ("PersistentVolumeClaim", "logstore-data"),
    ("ResourceQuota", "tenant-quota"),
    ("LimitRange", "tenant-limits"),
    ("NetworkPolicy", "default-deny"),
    ("NetworkPolicy", "allow-dns"),
    ("NetworkPolicy", "proxy-ingress-clients"),
    ("NetworkPolicy", "proxy-egress"),
    ("NetworkPolicy", "antivirus"),
    ("NetworkPolicy", "logstore"),
    ("ConfigMap", "proxy-config"),
    ("ConfigMap", "antivirus-config"),
    ("Service", "logstore"),
    ("Service", "antivirus"),
    ("Service", "proxy"),
    ("Deployment", "logstore"),
    ("Deployment", "antivirus"),
    ("Deployment", "proxy"),
    ("PodDisruptionBudget", "proxy"),
    ("PodDisruptionBudget", "antivirus"),
]


def kinds_and_names(manifests: Any) -> list[tuple[str, str]]:
    return [(o["kind"], o["metadata"]["name"]) for o in manifests.objects]


def test_minimal_tenant_renders_every_object_in_apply_order() -> None:
    manifests = render_example("minimal")
    assert manifests.namespace == "swg-minimal"
    assert kinds_and_names(manifests) == MINIMAL_OBJECTS


def test_full_tenant_adds_one_binding_per_admin() -> None:
    manifests = render_example("full")
    bindings = objects_of(manifests, "RoleBinding")
    assert [b["subjects"] for b in bindings] == [
        [
            {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "User",
                "name": "alice@example-corp.example",
            }
        ],
        [
            {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Group",
                "name": "example-corp:swg-admins",
            }
        ],
    ]
    # Bound in the tenant namespace to the admins' ClusterRole (the chart ships it); no Role.
    assert all(
        b["roleRef"]
        == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": "swg-tenant-reader",
        }
        and b["metadata"]["namespace"] == manifests.namespace
        for b in bindings
    )
    assert not objects_of(manifests, "Role")


@pytest.mark.parametrize("example", EXAMPLE_NAMES)
def test_objects_are_owned_by_label_and_never_by_reference(example: str) -> None:
    manifests = render_example(example)
    name = find(manifests, "Namespace", manifests.namespace)["metadata"]["labels"]["swg.dev/tenant"]
    for obj in manifests.objects:
        meta = obj["metadata"]
        assert selector_for(name).items() <= meta["labels"].items(), obj["kind"]
        assert "ownerReferences" not in meta
        if obj["kind"] != "Namespace":
            assert meta["namespace"] == manifests.namespace
    assert Counter(kinds_and_names(manifests)).most_common(1)[0][1] == 1


def test_namespace_enforces_restricted_pod_security() -> None:
    labels = find(render_example("full"), "Namespace", "swg-example-corp")["metadata"]["labels"]
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"
        assert labels[f"pod-security.kubernetes.io/{mode}-version"]
    assert labels["swg.dev/service-code"] == "SWG-0001234"


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


def test_reader_role_is_read_only_and_never_reaches_secrets() -> None:
    role = rbac.reader_cluster_role()
    assert role["metadata"]["name"] == "swg-tenant-reader"
    for rule in role["rules"]:
        assert set(rule["verbs"]) <= {"get", "list", "watch"}
        assert not {"secrets", "pods/exec", "pods/portforward", "pods/attach"} & set(
            rule["resources"]
        )
        assert "*" not in rule["resources"] + rule["verbs"] + rule["apiGroups"]
        if {"configmaps", "services/proxy"} & set(rule["resources"]):
            assert rule["verbs"] == ["get"]
            assert rule["resourceNames"], rule  # by name only
    proxy_rule = next(r for r in role["rules"] if r["resources"] == ["services/proxy"])
    assert all(name.split(":")[0] in ("logstore", "http") for name in proxy_rule["resourceNames"])
    config_rule = next(r for r in role["rules"] if r["resources"] == ["configmaps"])
    assert sorted(config_rule["resourceNames"]) == [
        "https-inspection-ca-cert",
        "proxy-access-tls-cert",
        "tenant-notices",
        "tenant-status",
    ]


def test_an_admin_listed_twice_is_bound_once() -> None:
    admin = {"kind": "User", "name": "alice@example.test"}
    manifests = render("dup", minimal_spec(admins=[admin, admin]))
    assert len(objects_of(manifests, "RoleBinding")) == 1


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


def test_antivirus_disabled_renders_no_antivirus_object_or_path() -> None:
    manifests = render("noav", minimal_spec(antivirus={"enabled": False}))
    assert not [o for o in manifests.objects if o["metadata"]["name"].startswith("antivirus")]
    egress = find(manifests, "NetworkPolicy", "proxy-egress")["spec"]["egress"]
    assert all(
        peer.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/component")
        != "antivirus"
        for rule in egress
        for peer in rule["to"]
    )


def replicas(manifests: Any) -> dict[str, int]:
    return {
        d["metadata"]["name"]: d["spec"]["replicas"] for d in objects_of(manifests, "Deployment")
    }


def test_active_tenant_runs_the_planned_replicas() -> None:
    manifests = render_example("full")
    assert replicas(manifests) == {
        "proxy": manifests.sizing.proxy.replicas,
        "antivirus": manifests.sizing.antivirus.replicas if manifests.sizing.antivirus else 0,
        "logstore": 1,
    }


@pytest.mark.parametrize("lifecycle", [Lifecycle.SUSPENDED, Lifecycle.CANCELLED])
def test_stopped_tenant_keeps_only_its_logs_running(lifecycle: Lifecycle) -> None:
    manifests = render_example("full", lifecycle=lifecycle)
    assert replicas(manifests) == {"proxy": 0, "antivirus": 0, "logstore": 1}
    assert has(manifests, "PersistentVolumeClaim", "logstore-data")
    assert has(manifests, "Service", "logstore")
    assert len(objects_of(manifests, "RoleBinding")) == 2
    assert not has(manifests, "NetworkPolicy", "proxy-ingress-clients")
    assert not has(manifests, "NetworkPolicy", "proxy-egress")
    assert has(manifests, "NetworkPolicy", "default-deny")


def test_cancelled_tenant_releases_its_proxy_address() -> None:
    assert has(render_example("full", lifecycle=Lifecycle.SUSPENDED), "Service", "proxy")
    assert not has(render_example("full", lifecycle=Lifecycle.CANCELLED), "Service", "proxy")


def ip_block_peers(manifests: TenantManifests) -> list[dict[str, Any]]:
    return [
        peer
        for policy in objects_of(manifests, "NetworkPolicy")
        for rule in policy["spec"].get("ingress", []) + policy["spec"].get("egress", [])
        for peer in rule.get("from", []) + rule.get("to", [])
        if "ipBlock" in peer
    ]


def test_cancelled_tenant_has_no_ip_block_left() -> None:
    assert ip_block_peers(render_example("full")), "the active tenant has client and egress CIDRs"
    cancelled = render_example("full", lifecycle=Lifecycle.CANCELLED)
    assert has(cancelled, "NetworkPolicy", "default-deny")
    assert ip_block_peers(cancelled) == []


def test_spec_suspended_suspends_an_active_tenant_only() -> None:
    spec = parse_spec(minimal_spec(suspended=True))
    assert effective_lifecycle(Lifecycle.ACTIVE, suspended=spec.suspended) is Lifecycle.SUSPENDED
    assert effective_lifecycle(Lifecycle.CANCELLED, suspended=spec.suspended) is Lifecycle.CANCELLED
    assert replicas(render("paused", spec))["proxy"] == 0


def test_proxy_service_keeps_client_addresses() -> None:
    service = find(render_example("full"), "Service", "proxy")["spec"]
    assert service["type"] == "LoadBalancer"
    assert service["externalTrafficPolicy"] == "Local"
    assert service["loadBalancerSourceRanges"] == [
        "198.51.100.0/24",
        "203.0.113.0/25",
        "2001:db8:100::/48",
    ]
    internal = render(
        "internal", minimal_spec(), settings=OperatorSettings(proxy_service_type="ClusterIP")
    )
    assert "externalTrafficPolicy" not in find(internal, "Service", "proxy")["spec"]


def test_unknown_category_is_refused_naming_the_field() -> None:
    spec = minimal_spec(
        urlFiltering={
            "blockedCategories": ["malware", "no-such-category"],
            "policies": [
                {"name": "lab", "sourceCIDRs": ["192.0.2.0/25"], "blockedCategories": ["nope"]}
            ],
        }
    )
    with pytest.raises(RenderError) as caught:
        render("unknown", spec)
    assert caught.value.reason == "UnknownCategory"
    assert caught.value.problems == (
        "spec.urlFiltering.blockedCategories[1]: category 'no-such-category' is not in the URL "
        "catalogue",
        "spec.urlFiltering.policies[0].blockedCategories[0]: category 'nope' is not in the URL "
        "catalogue",
    )


@pytest.mark.parametrize(
    ("url", "refused"),
    [
        ("icaps://10.1.2.3:1344/respmod", True),
        ("icaps://172.16.9.9/respmod", True),
        ("icaps://198.51.100.7:1344/respmod", False),
        ("icaps://sandbox.analysis.example/respmod", False),
    ],
)
def test_sandbox_inside_the_cluster_networks_is_refused(url: str, refused: bool) -> None:
    spec = minimal_spec(options={"sandbox": {"enabled": True, "icapURL": url}})
    if refused:
        with pytest.raises(RenderError) as caught:
            render("sandbox", spec)
        assert caught.value.reason == "SandboxUnreachable"
        assert caught.value.problems[0].startswith("spec.options.sandbox.icapURL: ")
    else:
        render("sandbox", spec)


@pytest.mark.parametrize("example", ["minimal", "full"])
def test_config_files_go_to_the_workload_that_reads_them(example: str) -> None:
    manifests = render_example(example)
    by_component = manifests.config_by_component
    assert "squid.conf" in by_component[Component.PROXY]
    assert "c-icap.conf" in by_component[Component.ANTIVIRUS]
    for component, files in by_component.items():
        carried: dict[str, str] = {}
        for config_map in manifests.objects:
            if config_map["kind"] == "ConfigMap" and config_map["metadata"]["name"].startswith(
                f"{component.value}-config"
            ):
                carried.update(config_map["data"])
        assert carried == dict(files), component


def _tenant() -> Tenant:
    manifests = render_example("minimal")
    return Tenant(
        name="minimal",
        spec=parse_spec(minimal_spec()),
        settings=OperatorSettings(),
        sizing=manifests.sizing,
        lifecycle=Lifecycle.ACTIVE,
        namespace="swg-minimal",
    )


def test_a_config_change_rolls_the_pods() -> None:
    tenant = _tenant()

    def digest_of(text: str) -> str:
        config = workload_config(tenant, Component.PROXY, {"squid.conf": text})
        template = proxy_deployment(tenant, config)["spec"]["template"]
        return str(template["metadata"]["annotations"][CONFIG_DIGEST_ANNOTATION])

    assert digest_of("http_port 3128\n") == digest_of("http_port 3128\n")
    assert digest_of("http_port 3128\n") != digest_of("http_port 3129\n")
    assert config_digest({"a": "1"}, references=["secret/x"]) != config_digest({"a": "1"})


def test_large_lists_are_split_over_several_config_maps() -> None:
    tenant = _tenant()
    chunk = "x" * (CONFIG_MAP_BUDGET_BYTES // 3)
    files = {"squid.conf": "http_port 3128\n", "a.list": chunk, "b.list": chunk, "c.list": chunk}
    config = workload_config(tenant, Component.PROXY, files)
    assert config.names == ("proxy-config", "proxy-config-2")
    merged: dict[str, str] = {}
    for config_map in config.config_maps:
        merged.update(config_map["data"])
    assert merged == files
    volume = next(
        v
        for v in proxy_deployment(tenant, config)["spec"]["template"]["spec"]["volumes"]
        if v["name"] == "config"
    )
    assert [s["configMap"]["name"] for s in volume["projected"]["sources"]] == list(config.names)

    with pytest.raises(ConfigTooLargeError):
        workload_config(tenant, Component.PROXY, {"huge.list": "x" * (CONFIG_MAP_BUDGET_BYTES + 1)})


def test_a_cancelled_tenant_renders_even_when_its_categories_left_the_catalogue() -> None:
    """Stopping the traffic and keeping the logs exportable must never depend on a catalogue
    that changed after the cancellation."""
    spec = minimal_spec(
        urlFiltering={"blockedCategories": ["malware", "retired-category"]},
        options={"sandbox": {"enabled": True, "icapURL": "icaps://10.1.2.3/respmod"}},
    )
    with pytest.raises(RenderError):
        render("retired", spec)
    manifests = render("retired", spec, lifecycle=Lifecycle.CANCELLED)
    assert replicas(manifests) == {"proxy": 0, "antivirus": 0, "logstore": 1}
    assert has(manifests, "PersistentVolumeClaim", "logstore-data")
    assert "category-malware.domains.0.list" in manifests.config_files


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
    sized = _tenant()
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


def test_one_category_collector_for_parsed_and_stored_specs() -> None:
    raw = {
        **example_document("minimal")["spec"],
        "urlFiltering": {
            "blockedCategories": ["gambling"],
            "policies": [
                {"name": "kids", "sourceCIDRs": ["10.0.0.0/24"], "blockedCategories": ["adult"]}
            ],
        },
        "options": {
            "httpsInspection": {"enabled": True, "doNotInspect": {"categories": ["malware"]}}
        },
    }
    expected = [
        ("spec.urlFiltering.blockedCategories[0]", "gambling"),
        ("spec.urlFiltering.policies[0].blockedCategories[0]", "adult"),
        ("spec.options.httpsInspection.doNotInspect.categories[0]", "malware"),
    ]
    assert list(wire_category_references(raw)) == expected
    assert list(category_references(parse_spec(raw))) == expected
    # A stored spec that does not parse still yields what it names, and never fails.
    broken = {"urlFiltering": {"blockedCategories": ["x"], "policies": [None, {"x": 1}]}}
    assert list(wire_category_references(broken)) == [
        ("spec.urlFiltering.blockedCategories[0]", "x")
    ]
    assert list(wire_category_references({"options": "nonsense"})) == []
