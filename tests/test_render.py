"""What a tenant renders to: the object set and its ownership, the admins' RBAC, the lifecycle
(active, suspended, cancelled) and the refusals of a spec that cannot be rendered."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from render_support import (
    EXAMPLE_NAMES,
    example_document,
    find,
    has,
    minimal_spec,
    objects_of,
    render,
    render_example,
)
from swg_operator.api import OperatorSettings, parse_spec
from swg_operator.labels import selector_for
from swg_operator.render import Lifecycle, RenderError, TenantManifests, effective_lifecycle, rbac
from swg_operator.render.checks import category_references, wire_category_references

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
