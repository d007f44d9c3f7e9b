"""What the security analyses read: rendered tenants, the chart's `helm template` output, and the
cluster workloads around them (DNS, monitoring, an unrelated application)."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from devtools.binaries import Binaries, cached_helm
from swg_operator.api import OperatorSettings, parse_spec
from swg_operator.catalogue import Catalogue
from swg_operator.catalogue_io import load_blacklist_directory
from swg_operator.render import Lifecycle, TenantManifests, render_tenant
from swg_operator.sizing_io import load_capacity

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = REPO_ROOT / "examples" / "tenants"
CATALOGUE = REPO_ROOT / "examples" / "catalogue"
CHART = REPO_ROOT / "charts" / "swg-operator"
RELEASE = "swg"
OPERATOR_NAMESPACE = "swg-system"


@cache
def sample_catalogue() -> Catalogue:
    return load_blacklist_directory(CATALOGUE)


def example_spec(example: str) -> dict[str, Any]:
    document = yaml.safe_load((EXAMPLES / f"{example}.yaml").read_text())
    spec: dict[str, Any] = document["spec"]
    return spec


def render(
    name: str,
    spec: Mapping[str, Any],
    *,
    settings: OperatorSettings | None = None,
    lifecycle: Lifecycle = Lifecycle.ACTIVE,
) -> TenantManifests:
    """Tenant `name` rendered from a raw spec with the sample catalogue."""
    return render_tenant(
        name,
        parse_spec(spec),
        catalogue=sample_catalogue(),
        settings=settings or OperatorSettings(),
        capacity=load_capacity(),
        lifecycle=lifecycle,
    )


@cache
def _chart_text(values: tuple[tuple[str, str], ...]) -> str:
    args = [arg for key, value in values for arg in ("--set", f"{key}={value}")]
    result = subprocess.run(
        [
            str(cached_helm()),
            "template",
            RELEASE,
            str(CHART),
            "--namespace",
            OPERATOR_NAMESPACE,
            "--kube-version",
            Binaries.from_cache().kubernetes_version,
            "--include-crds",
            *args,
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if result.returncode != 0:
        raise AssertionError(f"helm template exited {result.returncode}:\n{result.stderr}")
    return result.stdout


def chart_objects(values: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """The chart's objects as `helm template` renders them (with its crds/ folder)."""
    text = _chart_text(tuple(sorted((values or {}).items())))
    return [doc for doc in yaml.safe_load_all(text) if doc]


def namespace(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name}},
    }


def workload(ns: str, name: str, labels: Mapping[str, str], ports: list[int]) -> dict[str, Any]:
    """A plain Deployment standing for a cluster workload that is not ours."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "labels": dict(labels)},
        "spec": {
            "selector": {"matchLabels": dict(labels)},
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": {
                    "containers": [
                        {
                            "name": name,
                            "image": f"example.test/{name}:1",
                            "ports": [{"containerPort": p, "protocol": "TCP"} for p in ports],
                        }
                    ]
                },
            },
        },
    }
