"""The chart on the server: what `helm template` renders passes server-side validation, `helm
install` deploys a restricted pod, NOTES.txt's example is valid, the `helm test` hook, and `helm
upgrade` of the CRD and the settings."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from e2e.chart.support import (
    CHART,
    CRD_NAME,
    Release,
)

pytestmark = pytest.mark.cluster


def test_template_output_passes_server_side_validation(release: Release) -> None:
    """Everything `helm template` renders, with every optional part that needs no third-party
    CRD switched on, is accepted by the API server (schemas, admission, strict fields)."""
    rendered = release.cluster.helm(
        "template",
        release.name,
        str(CHART),
        "--namespace",
        release.namespace,
        "--include-crds",
        "--kube-version",
        release.cluster.server_version(),
        "--set",
        "image.digest=sha256:" + "ab" * 32,
        "--set",
        "networkPolicy.apiServer.cidrs[0]=192.0.2.10/32",
    ).stdout
    release.cluster.kubectl(
        "apply",
        "--dry-run=server",
        "--server-side",
        "--force-conflicts",
        "--validate=strict",
        "--field-manager=swg-e2e-dry-run",
        "-f",
        "-",
        input=rendered,
    )


def test_install_is_deployed_and_the_operator_pod_is_admitted_as_restricted(
    release: Release,
) -> None:
    status = json.loads(release.helm("status", release.name, "-o", "json").stdout)
    assert status["info"]["status"] == "deployed"
    deployment = release.cluster.kubectl_json(
        "get", "deployment", release.fullname, "-n", release.namespace
    )
    assert deployment["status"].get("availableReplicas") == 1
    crd = release.cluster.kubectl_json("get", "crd", CRD_NAME)
    assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    role = release.cluster.kubectl_json("get", "role", release.fullname, "-n", release.namespace)
    lease_rules = [r for r in role["rules"] if r["resources"] == ["leases"]]
    assert {(tuple(r.get("resourceNames", ())), tuple(r["verbs"])) for r in lease_rules} == {
        ((), ("create",)),
        ((release.fullname,), ("get", "update")),
    }


def _notes_tenant(notes: str) -> dict[str, Any]:
    """The tenant example NOTES.txt shows, as the reader would save it."""
    block = re.search(r"^( +)apiVersion: swg\.dev/v1alpha1\n(?:\1.*\n|\n)+", notes, re.M)
    assert block, "NOTES.txt shows no tenant example"
    indent = len(block.group(1))
    text = "\n".join(line[indent:] for line in block.group(0).splitlines())
    document = yaml.safe_load(text.split("\n\n   then", 1)[0])
    assert isinstance(document, dict)
    return document


def test_notes_tell_the_next_steps_and_their_example_tenant_is_valid(release: Release) -> None:
    notes = release.install_output
    for step in ("kubectl get swg", "kubectl apply -f tenant.yaml", "docs/install.md"):
        assert step in notes
    tenant = _notes_tenant(notes)
    release.cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=yaml.safe_dump(tenant))


def test_helm_test_hook(release: Release) -> None:
    """`helm test` asks /healthz through the Service. kwok never runs a bare pod to completion,
    so on the local control plane the hook pod is only checked to be admitted."""
    if release.cluster.local:
        hooks = [
            d for d in yaml.safe_load_all(release.helm("get", "hooks", release.name).stdout) if d
        ]
        (pod,) = [h for h in hooks if h["kind"] == "Pod"]
        release.cluster.kubectl(
            "apply",
            "--dry-run=server",
            "-n",
            release.namespace,
            "-f",
            "-",
            input=yaml.safe_dump(pod),
        )
        return
    release.helm("test", release.name, "--timeout", "2m")


def test_upgrade_rolls_the_operator_and_upgrades_the_crd(release: Release, tmp_path: Path) -> None:
    """`helm upgrade` applies a changed CRD (Helm would not for crds/) and a settings change
    replaces the operator pod; upgrading back restores both."""
    cluster = release.cluster
    before = cluster.kubectl_json("get", "deployment", release.fullname, "-n", release.namespace)
    changed = tmp_path / "swg-operator"
    shutil.copytree(CHART, changed, symlinks=False)  # files/crds: the generated files themselves
    (crd_file,) = (changed / "files" / "crds").glob("*.yaml")
    crd = yaml.safe_load(crd_file.read_text())
    column = {"name": "UpgradeProbe", "type": "string", "jsonPath": ".metadata.uid"}
    crd["spec"]["versions"][0]["additionalPrinterColumns"].append(column)
    crd_file.write_text(yaml.safe_dump(crd, sort_keys=False))

    def columns() -> list[str]:
        stored = cluster.kubectl_json("get", "crd", CRD_NAME)
        return [c["name"] for c in stored["spec"]["versions"][0]["additionalPrinterColumns"]]

    release.helm(
        "upgrade",
        release.name,
        str(changed),
        "--reuse-values",
        "--set",
        "dataplane.proxyPort=8128",
        "--wait",
        "--timeout",
        "3m",
    )
    assert "UpgradeProbe" in columns()
    after = cluster.kubectl_json("get", "deployment", release.fullname, "-n", release.namespace)
    annotation = "swg.dev/settings-checksum"
    assert (
        after["spec"]["template"]["metadata"]["annotations"][annotation]
        != before["spec"]["template"]["metadata"]["annotations"][annotation]
    )
    assert '"proxyPort": 8128' in release.settings_json()
    history = json.loads(release.helm("history", release.name, "-o", "json").stdout)
    assert history[-1]["status"] == "deployed"

    release.helm(
        "upgrade",
        release.name,
        str(CHART),
        "--reuse-values",
        "--set",
        "dataplane.proxyPort=3128",
        "--wait",
        "--timeout",
        "3m",
    )
    assert "UpgradeProbe" not in columns()
    assert '"proxyPort": 3128' in release.settings_json()


# --- the operator with the chart's ServiceAccount ----------------------------------------------
