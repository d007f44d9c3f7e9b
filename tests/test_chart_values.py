"""The chart's values without a cluster: the settings contract with the operator, the CRDs it
ships, leader election and the operator's arguments, and values.schema.json."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
import yaml

from chart_support import (
    CHART,
    DIGEST,
    NAMESPACE,
    REPO_ROOT,
    by_kind,
    helm_template,
    one,
    render,
    set_args,
    settings_of,
)
from swg_operator.api import OperatorSettings

GENERATED_CRDS = REPO_ROOT / "crds"


# --- the settings contract with the operator ---------------------------------------------------


def test_settings_document_is_a_valid_operator_settings() -> None:
    settings = settings_of(render())
    assert settings.operator_namespace == NAMESPACE
    assert settings.images.proxy.startswith("ghcr.io/swg-operator/proxy:")


def test_every_settings_field_comes_from_a_value() -> None:
    """A field the operator adds to OperatorSettings must get a chart value (or be listed here
    with the reason it has none)."""
    not_from_values = {"testAllowedLoopback": "test-only: the data-plane tier's loopback origin"}
    config_map = one(render(), "ConfigMap")
    rendered = set(json.loads(config_map["data"]["settings.json"]))
    fields = {f.alias or name for name, f in OperatorSettings.model_fields.items()}
    assert rendered | set(not_from_values) == fields


def test_dataplane_values_reach_the_settings() -> None:
    settings = settings_of(
        render(
            {
                "dataplane.images.proxy.tag": "9.9.9",
                "dataplane.images.proxy.digest": DIGEST,
                "dataplane.clusterCIDRs[0]": "10.244.0.0/16",
                "dataplane.proxyPort": "8128",
            }
        )
    )
    assert settings.images.proxy == f"ghcr.io/swg-operator/proxy:9.9.9@{DIGEST}"
    assert settings.cluster_cidrs == ("10.244.0.0/16",)
    assert settings.proxy_port == 8128


def test_antivirus_values_reach_the_settings() -> None:
    assert settings_of(render()).antivirus == OperatorSettings().antivirus  # same defaults
    settings = settings_of(
        render(
            {
                "dataplane.antivirus.signatureSource": "configMap",
                "dataplane.antivirus.signatureConfigMap": "platform-sigs",
                "dataplane.antivirus.freshclam.privateMirrors[0]": "http://mirror.swg-system.svc",
                "dataplane.antivirus.freshclam.checksPerDay": "24",
                "dataplane.antivirus.freshclam.mirrorCIDRs[0]": "10.96.0.0/12",
                "dataplane.antivirus.freshclam.mirrorPods.namespace": "swg-system",
                "dataplane.antivirus.freshclam.mirrorPods.podLabel": "app=clamav-mirror",
                "dataplane.antivirus.freshclam.mirrorPorts[0]": "8080",
            }
        )
    )
    antivirus = settings.antivirus
    assert (antivirus.signature_source, antivirus.signature_config_map) == (
        "configMap",
        "platform-sigs",
    )
    freshclam = antivirus.freshclam
    assert freshclam.private_mirrors == ("http://mirror.swg-system.svc",)
    assert (freshclam.checks_per_day, freshclam.mirror_cidrs) == (24, ("10.96.0.0/12",))
    assert freshclam.mirror_pods is not None
    assert (freshclam.mirror_pods.namespace, freshclam.mirror_pods.pod_label) == (
        "swg-system",
        "app=clamav-mirror",
    )
    assert freshclam.mirror_ports == (8080,)


# --- CRDs --------------------------------------------------------------------------------------


def generated_crds() -> dict[str, dict[str, Any]]:
    crds = {}
    for path in sorted(GENERATED_CRDS.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == "CustomResourceDefinition":
                crds[doc["metadata"]["name"]] = doc
    return crds


def test_rendered_crds_are_the_generated_ones_plus_release_metadata() -> None:
    generated = generated_crds()
    assert generated, "crds/ holds no CustomResourceDefinition"
    rendered = {d["metadata"]["name"]: d for d in by_kind(render(), "CustomResourceDefinition")}
    assert set(rendered) == set(generated)
    for name, crd in rendered.items():
        meta = crd["metadata"]
        assert meta["annotations"]["helm.sh/resource-policy"] == "keep"
        assert meta["annotations"]["argocd.argoproj.io/sync-options"] == "Prune=false,Delete=false"
        assert meta["labels"]["app.kubernetes.io/managed-by"] == "Helm"
        source = generated[name]
        assert {k: v for k, v in crd.items() if k != "metadata"} == {
            k: v for k, v in source.items() if k != "metadata"
        }, f"{name}: the rendered spec differs from crds/"
        for key, value in source["metadata"].get("labels", {}).items():
            assert meta["labels"][key] == value


def test_crds_can_be_left_to_the_user_or_not_kept() -> None:
    assert not by_kind(render({"crds.install": "false"}), "CustomResourceDefinition")
    crds = by_kind(render({"crds.keep": "false"}), "CustomResourceDefinition")
    assert crds
    for crd in crds:
        assert "helm.sh/resource-policy" not in crd["metadata"].get("annotations", {})


def test_leader_election_on_a_lease_and_no_kopf_peering() -> None:
    """kopf peering is gone: instances of equal priority all pause. The Lease is named after
    the release unless leaderElection.leaseName says otherwise."""
    assert not [
        d
        for d in render(include_crds=True)
        if d["kind"] == "CustomResourceDefinition" and "kopf" in d["metadata"]["name"]
    ]
    assert not [d for d in render() if "kopf" in d["apiVersion"]]
    container = one(render(), "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert "--lease=swg-swg-operator" in container["args"]
    assert {"name": "POD_ID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}} in (
        container["env"]
    )
    named = render({"leaderElection.leaseName": "swg-leader"})
    args = one(named, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--lease=swg-leader" in args
    standalone = render({"leaderElection.enabled": "false"})
    args = one(standalone, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--standalone" in args
    assert not [r for r in one(standalone, "Role")["rules"] if "leases" in r["resources"]]


# --- values.schema.json ------------------------------------------------------------------------


BAD_VALUES = [
    ("unknown top-level key", {"replica": "2"}),
    ("no replica", {"replicas": "0"}),
    ("replicas not a number", {"replicas": "two"}),
    ("several replicas, no election", {"replicas": "2", "leaderElection.enabled": "false"}),
    ("unknown nested key", {"image.registry": "example.org"}),
    ("digest that is not sha256", {"image.digest": "sha256:abc"}),
    ("tag with a space", {"image.tag": "1 2"}),
    ("pull policy", {"image.pullPolicy": "Sometimes"}),
    ("health port below 1024", {"health.port": "80"}),
    ("health port not a number", {"health.port": "http"}),
    ("cluster CIDR", {"dataplane.clusterCIDRs[0]": "10.0.0.0"}),
    ("log level", {"logLevel": "verbose"}),
    ("lease name", {"leaderElection.leaseName": "Not_A_Name"}),
    ("API server port", {"networkPolicy.apiServer.ports[0]": "70000"}),
    ("probe period", {"health.livenessProbe.periodSeconds": "0"}),
    ("crds.install not a boolean", {"crds.install": "maybe"}),
    ("alert threshold", {"metrics.prometheusRule.tenantNotReadyMinutes": "0"}),
    ("scrape interval", {"metrics.serviceMonitor.interval": "soon"}),
    ("proxy Service type", {"dataplane.proxyServiceType": "ExternalName"}),
    ("API server CIDR", {"dataplane.apiServerCIDRs[0]": "api.example.com"}),
    ("negative resync", {"resyncSeconds": "-1"}),
    ("dataplane image digest", {"dataplane.images.proxy.digest": "latest"}),
    ("signature source", {"dataplane.antivirus.signatureSource": "internet"}),
    ("mirror with a space", {"dataplane.antivirus.freshclam.databaseMirror": "a b.test"}),
    ("private mirror scheme", {"dataplane.antivirus.freshclam.privateMirrors[0]": "ftp://m.test"}),
    ("checks per day", {"dataplane.antivirus.freshclam.checksPerDay": "0"}),
]


@pytest.mark.parametrize(("what", "values"), BAD_VALUES, ids=[b[0] for b in BAD_VALUES])
def test_values_schema_rejects(what: str, values: dict[str, str]) -> None:
    result = helm_template(*set_args(values), check=False)
    assert result.returncode != 0, f"{what}: accepted"
    assert "values don't meet the specifications of the schema" in result.stderr, result.stderr


def _schema() -> dict[str, Any]:
    return json.loads((CHART / "values.schema.json").read_text())


def _leaves(values: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    if isinstance(values, dict) and values:
        for key, value in values.items():
            yield from _leaves(value, (*path, key))
    else:
        yield path


def test_schema_describes_every_value() -> None:
    schema = _schema()
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    for path in _leaves(values):
        node = schema
        for i, key in enumerate(path):
            properties = node.get("properties")
            if properties is None:
                # A free-form map (labels, annotations, selectors): its own schema governs it.
                assert node.get("type") == "object"
                assert node.get("additionalProperties") is not False
                break
            assert key in properties, f"values.yaml {'.'.join(path[: i + 1])} is not in the schema"
            node = properties[key]


def test_schema_objects_refuse_unknown_keys() -> None:
    free_form = {
        "global",
        "affinity",
        "annotations",
        "labels",
        "nodeSelector",
        "podAnnotations",
        "podLabels",
        "podSelector",
        "matchLabels",
    }

    def walk(node: Mapping[str, Any], name: str) -> None:
        if node.get("type") == "object" and "properties" in node:
            assert node.get("additionalProperties") is False, f"{name} accepts unknown keys"
        for key, child in node.get("properties", {}).items():
            if key not in free_form:
                walk(child, key)
        items = node.get("items")
        if isinstance(items, dict) and name not in ("extraEnv", "tolerations"):
            walk(items, f"{name}[]")

    walk(_schema(), "values")


def test_operator_arguments_are_accepted_by_swg_operator_run() -> None:
    """The Deployment's args parse with the operator's own command line, for every mode."""
    from swg_operator.cli import build_parser

    for values in ({}, {"leaderElection.enabled": "false", "logLevel": "debug"}):
        container = one(render(values), "Deployment")["spec"]["template"]["spec"]["containers"][0]
        args = build_parser().parse_args(container["args"])
        assert args.command == "run"
        assert str(args.settings) == "/etc/swg-operator/settings.json"
        mount = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}["settings"]
        assert str(args.settings).startswith(mount + "/")
        assert args.verbose is (values.get("logLevel") == "debug")
        assert (args.lease is None) is (values.get("leaderElection.enabled") == "false")
        assert args.standalone is (values.get("leaderElection.enabled") == "false")
